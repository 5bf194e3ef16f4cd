"""Load time of the CIFAR-10 training split: first load (decode + cache) and cached loads.

Usage: python benchmarks/bench_data.py [--data-root DIR] [--repeats N]

The first load is measured with an empty, temporary cache folder, so it always decodes the images.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from course_utils import GetDataRoot, LoadCifar10


def main() -> None:
    oParser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    oParser.add_argument('--data-root', default=None, help='data root (default: COURSE_DATA_DIR or datasets/)')
    oParser.add_argument('--repeats', type=int, default=3, help='number of cached loads to time')
    oArgs = oParser.parse_args()

    dataRoot = oArgs.data_root or GetDataRoot()
    with tempfile.TemporaryDirectory() as cacheDir:
        os.environ['COURSE_CACHE_DIR'] = cacheDir
        startTime = time.perf_counter()
        dsTrain = LoadCifar10(isTrain=True, dataRoot=dataRoot, download=False)
        firstTime = time.perf_counter() - startTime
        print(f'Source: {type(dsTrain).__name__} at {dataRoot}, {len(dsTrain)} images')
        print(f'First load (decode + write cache): {firstTime:6.2f} s')
        for ii in range(oArgs.repeats):
            startTime = time.perf_counter()
            LoadCifar10(isTrain=True, dataRoot=dataRoot, download=False)
            print(f'Cached load {ii + 1}:                     {time.perf_counter() - startTime:6.2f} s')


if __name__ == '__main__':
    main()
