"""fastnn: fast, trustworthy training of fully connected networks on the CPU.

>>> from fastnn import Network
>>> net = Network([784, 200, 10], activation="relu", output="softmax")
"""

from fastnn import schedules
from fastnn.history import History
from fastnn.network import Network
from fastnn.training import DivergenceError

__version__ = "0.1.0"
__all__ = ["Network", "History", "DivergenceError", "schedules", "__version__"]
