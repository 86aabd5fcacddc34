"""The original metalgpu README's example: add two int buffers with the `adder` kernel of shader.metal.

Run from anywhere:  python examples/original/main.py [--backend cpu|cuda|metal]
The shader is found next to this file; the backend is the best available (or METALGPU_BACKEND) unless named.
"""
import argparse
import ctypes
from pathlib import Path

import numpy as np

from metalgpu import Interface

parser = argparse.ArgumentParser(description="the original metalgpu example: arr3 = arr1 + arr2 on the device")
parser.add_argument("--backend", default=None, help="metal, cuda or cpu (default: the best available)")
args = parser.parse_args()

instance = Interface(backend=args.backend) # Initialise the metal instance
instance.load_shader(Path(__file__).parent / "shader.metal") # Path to the metal shader, next to this file
instance.set_function("adder") # Name of the function that will be ran (Can be changed at any time)

buffer_size = 1000 # Number of items in the buffer
buffer_type = ctypes.c_int # Types of the items inside the buffer

buffer1 = instance.create_buffer(buffer_size, buffer_type) # Create a shared gpu-cpu buffer.
buffer2 = instance.create_buffer(buffer_size, buffer_type)
buffer3 = instance.create_buffer(buffer_size, buffer_type)

for i in range(buffer_size):
    buffer1.contents[i] = i
    buffer2.contents[i] = int(np.sqrt(i))

instance.run_function(buffer_size, [buffer1, buffer2, buffer3]) # Computes i + int(sqrt(i))

for i in range(buffer_size):
    assert(buffer3.contents[i] == i + int(np.sqrt(i)))

expected = np.arange(buffer_size) + np.sqrt(np.arange(buffer_size)).astype(int)
print(f"adder on {buffer_size} ints ({instance.backend}): arr3[:6] = {buffer3.contents[:6].tolist()}; "
      f"equal to numpy's i + int(sqrt(i)): {np.array_equal(buffer3.contents, expected)}")

buffer1.release()
buffer2.release()
buffer3.release()
