"""rayexp: Ray-native experiments with diffusion planners and one-step consistency students.

Importing the package is cheap: Ray, RLlib, MuJoCo and the environments load where they are used.
"""
__version__ = "0.1.0"
