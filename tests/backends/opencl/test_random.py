"""Tests of the device random numbers of the OpenCL array module
(pygrad/backends/opencl/random.py)."""

import numpy as np


def test_random_numbers_are_reproducible_and_well_spread(xp):
    xp.random.seed(3)
    first = xp.random.rand(1000, dtype=np.float32)
    xp.random.seed(3)
    again = xp.random.rand(1000, dtype=np.float32)
    np.testing.assert_array_equal(first.get(), again.get())
    assert first.dtype == np.float32 and 0.45 < float(first.mean()) < 0.55
    normal = xp.random.randn(20000).get()
    assert normal.dtype == np.float64 and abs(normal.mean()) < 0.05 and abs(normal.std() - 1) < 0.05
    ints = xp.random.randint(0, 3, size=100).get()
    assert set(ints.tolist()) == {0, 1, 2}


def test_threads_drawing_at_once_never_share_random_numbers(xp):
    import threading

    device = xp.get_device()
    starts = [[] for _ in range(4)]

    def draw(found):
        for _ in range(2000):
            found.append(device.draw(3)[1])

    threads = [threading.Thread(target=draw, args=(found,)) for found in starts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counters = sorted(c for found in starts for c in found)
    assert all(b - a == 3 for a, b in zip(counters, counters[1:]))
