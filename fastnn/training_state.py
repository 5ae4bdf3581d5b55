"""The :class:`TrainingState`: what training changes in a network and carries between fits.

A network's numbers live here: the flat parameter buffer (``Network.params``
is this very array), the generator that shuffles the rows, the number of
epochs trained, and the optimizer's state (momentum or Adam's moments and the
step counter), kept so that a warm start continues where the last fit ended.
The training loop takes snapshots of it at the start of every epoch and
restores them on a fault; checkpoints, model files, broadcasts between MPI
ranks and pickles all go through :meth:`TrainingState.arrays`,
:attr:`TrainingState.rng_state` and :meth:`TrainingState.to_dict`.
"""

import copy

import numpy as np

from fastnn.aligned import aligned_copy
from fastnn.optim import new_state


class TrainingState:
    """Parameters, shuffle generator, epochs trained and optimizer state of one network.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
        The network's flat parameter buffer (shared, not copied).
    rng : numpy.random.Generator
        Draws each epoch's row order.

    Attributes
    ----------
    params : ndarray, shape (n_params,)
    rng : numpy.random.Generator
    epochs_done : int
        Epochs trained over the network's life (``History.epoch`` counts these).
    optimizer : str or None
        The optimizer whose state is kept, None before the first fit.
    moments : ndarray, shape (rows, n_params), or None
        SGD's velocity (one row) or Adam's two moments.
    step : ndarray of int64, shape (1,), or None
        Optimizer steps taken (Adam's bias correction counts them).
    """

    def __init__(self, params, rng):
        self.params = params
        self.rng = rng
        self.epochs_done = 0
        self.optimizer = None
        self.moments = None
        self.step = None

    @property
    def rng_state(self):
        """The shuffle generator's state as plain values (JSON-ready); settable."""
        return self.rng.bit_generator.state

    @rng_state.setter
    def rng_state(self, state):
        self.rng.bit_generator.state = state

    def optimizer_buffers(self, optimizer, warm_start):
        """The optimizer state a fit with ``optimizer`` updates in place.

        The previous fit's state when ``warm_start`` and the optimizer is the
        same one, else fresh zeros (which are then kept for the next warm start).

        Returns
        -------
        moments : ndarray, shape (rows, n_params)
        step : ndarray of int64, shape (1,)
        """
        if not (warm_start and self.optimizer == optimizer and self.moments is not None):
            self.moments, self.step = new_state(optimizer, self.params.shape[0],
                                                self.params.dtype)
            self.optimizer = optimizer
        return self.moments, self.step

    def arrays(self):
        """``(params, moments, step)``: the arrays a checkpoint or a broadcast carries.

        Call after :meth:`optimizer_buffers`.
        """
        return self.params, self.moments, self.step

    def snapshot(self, rng=None):
        """A copy of the state now, to :meth:`Snapshot.restore` later.

        Parameters
        ----------
        rng : numpy.random.Generator, optional
            The generator the run shuffles with, when not this state's own
            (the distributed run shuffles each rank's rows with a generator of
            the rank).
        """
        return Snapshot(self, self.rng if rng is None else rng)

    def to_dict(self):
        """The state as plain values and arrays (copies), for pickling; see :meth:`from_dict`."""
        return {"params": self.params.copy(), "rng_state": copy.deepcopy(self.rng_state),
                "epochs_done": self.epochs_done, "optimizer": self.optimizer,
                "moments": None if self.moments is None else self.moments.copy(),
                "step": None if self.step is None else self.step.copy()}

    @classmethod
    def from_dict(cls, data):
        """Inverse of :meth:`to_dict`."""
        state = cls(aligned_copy(data["params"]), np.random.default_rng())
        state.rng_state = data["rng_state"]
        state.epochs_done = data["epochs_done"]
        state.optimizer = data["optimizer"]
        state.moments = None if data["moments"] is None else aligned_copy(data["moments"])
        state.step = None if data["step"] is None else np.array(data["step"])
        return state


class Snapshot:
    """Parameters, optimizer state, epochs and shuffle state at one moment (copies).

    Parameters
    ----------
    state : TrainingState
    rng : numpy.random.Generator
        The shuffle generator to capture.
    """

    def __init__(self, state, rng):
        self._state, self._rng = state, rng
        self.params = state.params.copy()
        self.moments = None if state.moments is None else state.moments.copy()
        self.step = None if state.step is None else state.step.copy()
        self.epochs_done = state.epochs_done
        # the getter builds a new dict of ints each time: a copy already (a deepcopy
        # of it was a fifth of the bookkeeping of a 200-epoch fit of the digits)
        self.rng_state = rng.bit_generator.state

    def restore(self):
        """Write the copies back, in place (views of the buffers stay valid)."""
        state = self._state
        state.params[...] = self.params
        if self.moments is not None:
            state.moments[...] = self.moments
            state.step[...] = self.step
        state.epochs_done = self.epochs_done
        self._rng.bit_generator.state = self.rng_state
