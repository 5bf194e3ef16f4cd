"""Look inside a CNN: record activations with forward hooks, plot filters, find the most activating images."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from matplotlib.figure import Figure, SubFigure
from torch import nn
from torch.utils.data import DataLoader

from .config import ModelDevice
from .plotting import GridAxes


def SelectLayers(oModel: nn.Module, layerTypes: tuple[type[nn.Module], ...] = (),
                 lLayerNames: Sequence[str] = ()) -> dict[str, nn.Module]:
    """The model's sub-modules (by ``named_modules`` name) that match a type in ``layerTypes`` or a name in
    ``lLayerNames``. Raises ``ValueError`` for a name the model does not have, or when nothing matches."""
    dModules = dict(oModel.named_modules())
    lMissing = [name for name in lLayerNames if name not in dModules]
    if lMissing:
        raise ValueError(f'The model has no layer named {lMissing}; names are those of model.named_modules(), e.g. '
                         f'{[name for name in dModules if name][:8]}.')
    dLayers = {name: oLayer for name, oLayer in dModules.items()
               if name and (name in lLayerNames or (layerTypes and isinstance(oLayer, layerTypes)))}
    if not dLayers:
        raise ValueError(f'No layer of the model matches the types {layerTypes} or the names {list(lLayerNames)}.')
    return dLayers


@contextmanager
def RecordActivations(oModel: nn.Module, layerTypes: tuple[type[nn.Module], ...] = (),
                      lLayerNames: Sequence[str] = (), toCpu: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Context manager recording the outputs of chosen layers during forward passes::

        with RecordActivations(oModel, layerTypes=(nn.Conv2d,)) as dActivations:
            oModel(tX)
        dActivations['0']  #<! Output of the layer named '0'

    Each forward pass overwrites the previous outputs. The hooks are removed when the block ends, also when it
    ends with an error, so the model is left as it was.
    """
    dActivations: dict[str, torch.Tensor] = {}

    def MakeHook(layerName: str) -> Callable:
        def Hook(oLayer: nn.Module, tuInput: tuple, tOutput: torch.Tensor) -> None:
            # A copy: an in-place layer after this one (e.g. ReLU(inplace=True)) must not change what was recorded
            dActivations[layerName] = tOutput.detach().to('cpu' if toCpu else tOutput.device, copy=True)
        return Hook

    lHandles = [oLayer.register_forward_hook(MakeHook(name))
                for name, oLayer in SelectLayers(oModel, layerTypes, lLayerNames).items()]
    try:
        yield dActivations
    finally:
        for oHandle in lHandles:
            oHandle.remove()


def GetActivations(oModel: nn.Module, tX: torch.Tensor, layerTypes: tuple[type[nn.Module], ...] = (),
                   lLayerNames: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """Run ``tX`` through the model in eval mode (no gradients) and return the chosen layers' outputs (on the CPU)."""
    wasTraining = oModel.training
    oModel.eval()
    try:
        with RecordActivations(oModel, layerTypes, lLayerNames) as dActivations, torch.no_grad():
            oModel(tX.to(ModelDevice(oModel)))
    finally:
        oModel.train(wasTraining)
    return dict(dActivations)


def TopActivatingImages(oModel: nn.Module, dlData: DataLoader, layerName: str, channelIdx: int,
                        numTop: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (into the loader's data set, which must not be shuffled) of the ``numTop`` images whose mean
    activation of one channel of one layer is the highest, and those activations (both on the CPU).

    The model runs in eval mode without gradients; its training mode is restored afterwards (also on an error).
    The channel is reduced to one score per image on the model's device, and only the ``numTop`` results are
    copied to the CPU, once: no copy of whole activations, no host sync per batch.
    """
    oLayer = SelectLayers(oModel, lLayerNames=[layerName])[layerName]
    lScores: list[torch.Tensor] = []

    def Hook(oModule: nn.Module, tuInput: tuple, tOutput: torch.Tensor) -> None:
        # Reduced here, before an in-place layer after this one (e.g. ReLU(inplace=True)) could change the output
        if not 0 <= channelIdx < tOutput.shape[1]:
            raise ValueError(f'Layer {layerName!r} has {tOutput.shape[1]} channels; channelIdx={channelIdx} is out '
                             'of range.')
        lScores.append(tOutput.detach()[:, channelIdx].flatten(1).mean(dim=1))

    wasTraining = oModel.training
    oModel.eval()
    oHandle = oLayer.register_forward_hook(Hook)
    try:
        with torch.no_grad():
            oDevice = ModelDevice(oModel)
            for mX, *_ in dlData:
                oModel(mX.to(oDevice))
    finally:
        oHandle.remove()
        oModel.train(wasTraining)
    if not lScores:
        raise ValueError('The data loader yielded no batches.')
    vScores = torch.cat(lScores)
    vTop, vIdx = torch.topk(vScores, min(numTop, len(vScores)))
    return vIdx.cpu(), vTop.cpu()


def _Standardize01(tX: torch.Tensor) -> torch.Tensor:
    # Each filter on its own scale: only the pattern matters for display, not its magnitude
    tMin = tX.amin(dim=tuple(range(1, tX.ndim)), keepdim=True)
    tMax = tX.amax(dim=tuple(range(1, tX.ndim)), keepdim=True)
    return (tX - tMin) / (tMax - tMin).clamp_min(1e-12)


def PlotFilters(tW: torch.Tensor, numCols: int | None = None, asRgb: bool | None = None,
                hF: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """Show convolution filters (weights ``C_out x C_in x kH x kW``).

    With ``C_in == 3`` (first layer) every filter is one RGB image (``asRgb``, the default there). Otherwise each
    filter is a row of gray images, one per input channel. Every filter is min-max standardized for display.
    """
    tW = tW.detach().float().cpu()
    if tW.ndim != 4:
        raise ValueError(f'tW must be C_out x C_in x kH x kW, got shape {tuple(tW.shape)}.')
    numFilters, numChannels = tW.shape[:2]
    asRgb = numChannels == 3 if asRgb is None else asRgb
    if asRgb and numChannels != 3:
        raise ValueError(f'asRgb needs 3 input channels, the filters have {numChannels}.')
    tShow = _Standardize01(tW)
    if asRgb:
        lImgs, lTitles = list(tShow.permute(0, 2, 3, 1).numpy()), [f'{ii}' for ii in range(numFilters)]
    else:
        numCols = numChannels  #<! A row per filter, a column per input channel
        lImgs = [tShow[oo, cc].numpy() for oo in range(numFilters) for cc in range(numChannels)]
        lTitles = [f'{oo}: ch {cc}' for oo in range(numFilters) for cc in range(numChannels)]
    hF, vHa = GridAxes(len(lImgs), numCols, hF, cellSize=1.2)
    for hA, mImg, title in zip(vHa, lImgs, lTitles):
        hA.imshow(mImg, cmap=None if asRgb else 'gray', interpolation='nearest')
        hA.set_axis_off()
        hA.set_title(title, fontsize=7)
    return hF
