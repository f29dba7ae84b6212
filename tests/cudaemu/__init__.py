"""A CPU emulation of CUDA for the test suite: generated kernels and CudaProgram run without a GPU.

``cuda_emu.h`` lets g++ compile the generated ``.cu`` (threads as fibers, real barriers and warp
collectives), ``build.py`` builds and loads it with a launch table, ``driver.py`` stands in for
``pycuda.driver`` and ``fixture.py`` installs it for a test. See docs/cuda-emulator.md.

Test infrastructure: nothing it reports is a timing or a GPU result.
"""
