"""rayexp: Ray-native experiments with diffusion planners and one-step consistency students.

Importing the package is cheap: Ray, RLlib, MuJoCo and the environments load where they are used.
"""
import os

# torch's OpenMP threads spin while they wait for work. With more busy threads than cores (Ray workers
# beside the driver, or a shared machine) the spinning threads steal the cores the working ones need:
# measured on 2 loaded cores, a 2-thread U-Net forward took 1351 ms instead of 25 ms. PASSIVE makes them
# sleep instead. It must be set before torch starts its thread pool; Ray workers inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
