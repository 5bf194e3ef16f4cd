"""Loading speed alone (no model): DataLoader + per-image PIL transforms vs the device-resident fast path.

Both produce standardized, augmented (random crop with 4 pixels of padding, horizontal flip) CIFAR-10 training
batches; the figure is images per second over one epoch.

    python benchmarks/bench_loading.py [--batch-size 256] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch
import torchvision.transforms.v2 as TF
from torch.utils.data import DataLoader

from course_utils import GetDevice, GetNumWorkers, LoadCifar10, SyncDevice
from course_utils.fast_data import DeviceBatchLoader

V_MEAN, V_STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


def ImagesPerSecond(oLoader, oDevice: torch.device) -> float:
    numImg = 0
    startTime = time.perf_counter()
    for tX, _ in oLoader:
        tX = tX.to(oDevice)
        numImg += tX.shape[0]
    SyncDevice(oDevice)
    return numImg / (time.perf_counter() - startTime)


def main() -> None:
    oParser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    oParser.add_argument('--batch-size', type=int, default=256)
    oParser.add_argument('--device', default=None, help='cpu, cuda, mps (default: the best available)')
    oArgs = oParser.parse_args()
    oDevice = torch.device(oArgs.device) if oArgs.device else GetDevice()

    dsTrain = LoadCifar10(isTrain=True)
    dsTrain.transform = TF.Compose([TF.RandomCrop(32, padding=4), TF.RandomHorizontalFlip(), TF.ToImage(),
                                    TF.ToDtype(torch.float32, scale=True), TF.Normalize(V_MEAN, V_STD)])
    print(f'Device: {oDevice} | {len(dsTrain)} images | batch {oArgs.batch_size}')
    for numWorkers in sorted({0, GetNumWorkers(oDevice)}):
        dlTrain = DataLoader(dsTrain, batch_size=oArgs.batch_size, shuffle=True, num_workers=numWorkers,
                             pin_memory=oDevice.type == 'cuda')
        print(f'DataLoader + PIL transforms, {numWorkers} workers: {ImagesPerSecond(dlTrain, oDevice):9.0f} img/s')
    oFast = DeviceBatchLoader.FromDataset(dsTrain, oArgs.batch_size, V_MEAN, V_STD, device=oDevice, shuffle=True,
                                          cropPadding=4, flipProb=0.5)
    ImagesPerSecond(oFast, oDevice)  #<! Warm-up (first kernels, allocator)
    print(f'DeviceBatchLoader (fast path):         {ImagesPerSecond(oFast, oDevice):9.0f} img/s')


if __name__ == '__main__':
    main()
