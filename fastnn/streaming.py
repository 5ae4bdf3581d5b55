"""Out-of-core training: :meth:`fastnn.Network.fit` on data that stays on disk.

``fit`` hands an input here when it is an array-like that is not an in-memory
ndarray -- a memmap (``np.load(path, mmap_mode="r")``), an h5py dataset, a
zarr or dask array, anything with ``.shape``, ``.dtype`` and NumPy-style row
slicing -- or when ``block_rows`` is given.  The rows are read in contiguous
blocks; memory is bounded by the block size, not by the dataset.

How an epoch visits the rows
----------------------------
The rows are cut into blocks of ``block_rows`` consecutive rows (the last one
may be shorter). With ``shuffle=True`` each epoch visits the blocks in a fresh
random order and the rows of each block in a fresh random order, both drawn
from the network's shuffle generator (so a seed reproduces the fit); with
``shuffle=False`` both orders are the identity and the epoch visits the rows
exactly as in-memory training does. Data that fits in one block is shuffled
with the very permutation in-memory training draws, so a memmap (say, one that
joblib made of an array) trains bit-identically to the array. Mini-batches run
across block boundaries: the rows of a block that do not fill a last
mini-batch are carried to the front of the next block, so every mini-batch but
the epoch's last has ``batch_size`` rows, as in memory. Streaming with
``shuffle=False`` therefore gives bit-identical parameters to in-memory
training, whatever the block size. With ``shuffle=True`` and several blocks
the order differs from in-memory training: a mini-batch takes its rows from
one block (two where carried rows join it), not from the whole dataset, so
keep blocks much larger than the batch size, and shuffle data stored sorted
(e.g. by class) once beforehand.

Reading in the background
-------------------------
While one block trains (the kernels release the GIL), a worker thread reads
the next one, converts it to the network's dtype into one of two staging
buffers, and checks it: finite values, labels in range, non-negative weights.
A bad block raises ``ValueError`` naming its rows, with the parameters,
optimizer state and shuffle state restored to the start of the epoch.  The
first block of each epoch is read while the trainer waits.

Memory: two staging buffers of ``(block_rows + batch_size)`` rows of inputs,
dense targets and weights, plus what the array library allocates to read one
block.  Validation data that is itself out-of-core is evaluated in blocks the
same way.

Sparse inputs
-------------
A scipy.sparse ``X`` is streamed only when ``block_rows`` is given (it is in
memory already; what streaming bounds is its converted copy).  Its structure
is checked whole, up front (:func:`fastnn.validation.check_sparse_structure`);
a format other than CSR is converted to CSR once, in its own dtype (the other
formats slice rows slowly or not at all).  Each block ``X[a:b]`` is then
converted and checked by the boundary (to the kernels' CSR of the network's
dtype, finite values) in the worker thread, with no dense staging buffer for
the inputs: the rows carried into the next block are CSR rows stacked on it.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fastnn import codes, metrics
from fastnn.evaluation import outputs_and_loss, validation_metrics
from fastnn.training import TrainingRun
from fastnn.validation import (
    as_sample_weight,
    as_targets,
    check_feature_shape,
    check_int,
    check_numeric_dtype,
    check_rows,
    check_sparse_structure,
    check_target_shape,
    class_counts,
    class_weight_factors,
    class_weight_table,
    concatenate_rows,
    held_out_count,
    hold_out,
    is_sparse,
    numeric_array,
    take_rows,
)

#: bytes of one block of inputs (in the network's dtype) when ``block_rows`` is None
DEFAULT_BLOCK_BYTES = 64 << 20


class StreamDataError(ValueError):
    """A block of streamed data is unusable (non-finite values, bad labels, ...).

    Raised by :meth:`fastnn.Network.fit` with the parameters restored to the
    start of the epoch in which the block was read.

    Attributes
    ----------
    start, stop : int
        The block's rows, ``start <= row < stop``, counted in the array as given.
    """

    def __init__(self, message, start, stop):
        super().__init__(message)
        self.start = start
        self.stop = stop


def is_out_of_core(X):
    """Whether ``fit`` streams ``X`` in blocks instead of converting it whole.

    True for ``np.memmap`` (an ndarray subclass whose rows live on disk) and
    for objects that are not ndarrays but have ``shape``, a NumPy ``dtype``
    and ``__getitem__`` (h5py, zarr, dask, ...).  Lists, pandas frames,
    tensors of other libraries and scipy sparse matrices are not streamed.
    """
    if isinstance(X, np.memmap):
        return True
    if isinstance(X, np.ndarray) or is_sparse(X):
        return False
    if not (hasattr(X, "shape") and hasattr(X, "dtype") and hasattr(X, "__getitem__")):
        return False
    try:
        np.dtype(X.dtype)  # torch/tensorflow dtypes are not NumPy's: convert those whole
        tuple(X.shape)
    except TypeError:
        return False
    return True


class _Rows:
    """Rows ``start..stop-1`` of an array-like, read only when asked.

    Slicing an h5py dataset or a zarr array reads it, so a row range (the
    training part of ``validation_split``) must stay a description until a
    block is wanted.
    """

    def __init__(self, array, start=0, stop=None):
        self.array = array
        self.start = start
        self.stop = array.shape[0] if stop is None else stop
        self.shape = (self.stop - self.start,) + tuple(array.shape[1:])
        self.dtype = np.dtype(array.dtype)

    def read(self, a, b):
        """Rows ``a..b-1`` (relative to this range) as an ndarray (a sparse matrix's as a
        sparse matrix)."""
        rows = self.array[self.start + a:self.start + b]
        return rows if is_sparse(rows) else np.asarray(rows)

    def part(self, a, b):
        """A sub-range, still unread."""
        return _Rows(self.array, self.start + a, self.start + b)


class _Shaped:
    """Only a shape: stands in for the whole arrays where the loop asks for sizes."""

    def __init__(self, shape):
        self.shape = shape


def _as_rows(name, value, n_rows=None):
    """Wrap an array-like for block reads; lists and such are converted once."""
    if is_out_of_core(value):
        check_numeric_dtype(name, value.dtype)  # without reading a row
    else:
        value = numeric_array(name, value)
    if len(value.shape) == 0:
        raise ValueError(f"{name} must be an array with one row per sample; got a scalar")
    if n_rows is not None:
        check_rows(name, value.shape[0], n_rows)
    return _Rows(value)


def block_schedule(n_rows, block_rows, shuffle, rng):
    """The blocks of one epoch, in visiting order, with the order of rows in each.

    Draws, in this order, the block order (when there is more than one block)
    and then each block's row order from ``rng`` (only when ``shuffle``),
    lazily: an epoch's row order is never held whole in memory.

    Parameters
    ----------
    n_rows, block_rows : int
    shuffle : bool
    rng : numpy.random.Generator

    Yields
    ------
    start, stop : int
        The block's rows ``start..stop-1``.
    order : ndarray of int64, shape (stop - start,)
        A permutation of ``0..stop-start-1`` (the identity without shuffle).
    """
    n_blocks = -(-n_rows // block_rows)
    # one block draws only its row order: the very permutation in-memory fit draws,
    # so data that fits in a block trains the same from a memmap as from memory
    blocks = rng.permutation(n_blocks) if shuffle and n_blocks > 1 else range(n_blocks)
    for block in blocks:
        start = int(block) * block_rows
        stop = min(start + block_rows, n_rows)
        yield start, stop, (rng.permutation(stop - start) if shuffle
                            else np.arange(stop - start))


def _within_block(error):
    """A checker's message about one block; its row numbers count from the block's start."""
    message = str(error)
    return message + (" (rows and indices counted from the block's first row)"
                      if "row " in message or "index" in message else "")


def _default_block_rows(n_features, itemsize, batch):
    """Rows in :data:`DEFAULT_BLOCK_BYTES`, a whole number of batches (at least one)."""
    rows = DEFAULT_BLOCK_BYTES // (n_features * itemsize)
    return max(batch, rows // batch * batch)


class _BlockReader:
    """Reads, converts and checks blocks into two staging buffers, in a worker thread.

    Each buffer has ``batch`` free rows in front, where the rows carried over
    from the previous block go, then room for one block.

    Parameters
    ----------
    network : fastnn.Network
    X, y, weights : _Rows
        Inputs ``(n, d_0)`` (dense or CSR), targets (labels ``(n,)`` or ``(n,
        k)``) and row weights ``(n,)``; ``weights`` may be None (all ones).
    class_weights : ndarray of float64, shape (max(d_L, 2),), or None
        The weight of each class (:func:`fastnn.validation.class_weight_table`),
        multiplied into the row weights.
    block_rows, batch : int
    """

    def __init__(self, network, X, y, weights, class_weights, block_rows, batch):
        self.net = network
        self.X, self.y, self.weights = X, y, weights
        self.class_weights = class_weights
        self.block_rows = block_rows
        self.batch = batch
        self.n_blocks = -(-X.shape[0] // block_rows)
        rows = batch + min(block_rows, X.shape[0])
        dtype = network.dtype
        #: CSR inputs: each buffer's block of X is a converted CSR array (in ``blocks``),
        #: not rows of a dense buffer (which would be as large as the dense block)
        self.sparse = is_sparse(X.array)
        self.blocks = [None, None]
        self.buffers = [(None if self.sparse else np.empty((rows, X.shape[1]), dtype=dtype),
                         np.empty((rows, network.sizes[-1]), dtype=dtype),
                         np.empty(rows, dtype=dtype)) for _ in range(2)]
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastnn-reader")

    def submit(self, buffer, start, stop):
        """Start reading rows ``start..stop-1`` into ``buffer`` (0 or 1); returns a future."""
        return self._pool.submit(self._read, buffer, start, stop)

    def close(self):
        self._pool.shutdown(wait=True, cancel_futures=True)

    def features(self, buffer, view, carried):
        """The inputs of the rows ``view`` of staging buffer ``buffer`` (0 or 1).

        Dense: a view of its inputs.  CSR: the block read into it, with
        ``carried`` (the CSR rows carried over from the previous block) stacked
        in front.
        """
        if not self.sparse:
            return self.buffers[buffer][0][view]
        block = self.blocks[buffer]
        return block if carried is None else concatenate_rows([carried, block])

    def _fail(self, what, start, stop, message):
        block = start // self.block_rows
        raise StreamDataError(f"{what} rows {start}..{stop - 1} (block {block} of "
                              f"{self.n_blocks}, {self.block_rows} rows each): {message}",
                              start, stop)

    def _read_dense(self, X_block, start, stop):
        X_block[...] = self.X.read(start, stop)  # the dtype conversion, in place
        # checked after conversion: a float64 1e300 is inf in float32
        if not np.isfinite(X_block.sum(dtype=np.float64)):
            bad = ~np.isfinite(X_block)
            if bad.any():
                row, column = np.argwhere(bad)[0]
                self._fail("X", start, stop,
                           f"{int(bad.sum())} NaN or infinite value(s) (in the network's dtype "
                           f"{self.net.dtype.name}), the first at row {start + int(row)}, "
                           f"column {int(column)}; expected finite numbers")

    def _read(self, buffer, start, stop):
        X_buf, Y_buf, w_buf = self.buffers[buffer]
        rows = slice(self.batch, self.batch + stop - start)
        net = self.net
        if self.sparse:
            try:
                self.blocks[buffer] = net.architecture.features(self.X.read(start, stop))
            except (ValueError, TypeError) as error:
                self._fail("X", start, stop, _within_block(error))
        else:
            self._read_dense(X_buf[rows], start, stop)
        try:
            Y_buf[rows] = as_targets(self.y.read(start, stop), net.output, net.sizes[-1],
                                     stop - start, net.dtype)
        except (ValueError, TypeError) as error:
            self._fail("y", start, stop, _within_block(error))
        w_block = w_buf[rows]
        if self.weights is None:
            w_block[...] = 1
        else:
            try:
                # a block may weigh nothing; the epoch as a whole is checked after it ran
                w_block[...] = as_sample_weight(self.weights.read(start, stop), stop - start,
                                                net.dtype, allow_all_zero=True)
            except (ValueError, TypeError) as error:
                self._fail("sample_weight", start, stop, _within_block(error))
        if self.class_weights is not None:
            # the product in float64, rounded once, as in-memory fit does
            w_block[...] = w_block * class_weight_factors(None, net.output, Y_buf[rows],
                                                          table=self.class_weights)
        return stop - start


class StreamRun(TrainingRun):
    """The training loop of :mod:`fastnn.training`, fed block by block."""

    def __init__(self, network, reader, validation, plan, warm_start, block_rows):
        n = reader.X.shape[0]
        self.reader = reader  # before the loop's set-up, which asks whether it reads CSR
        super().__init__(network, _Shaped(reader.X.shape), _Shaped((n, network.sizes[-1])),
                         None, validation, plan, warm_start)
        self.block_rows = block_rows
        self._snapshot = None

    def _sparse_inputs(self):
        return self.reader.sparse

    # ------------------------------------------------------------ validation

    def _evaluate(self):
        if not isinstance(self.validation[0], _Rows):
            return validation_metrics(self.net, *self.validation)
        return streamed_metrics(self.net, *self.validation, self.block_rows)

    def _epoch_record(self, lr, elapsed):
        try:
            return super()._epoch_record(lr, elapsed)
        except Exception:
            self._restore()  # a bad block of out-of-core validation data
            raise

    # ------------------------------------------------------------ one epoch

    def _restore(self):
        """Back to the start of the epoch (the data was bad, not the training)."""
        self._snapshot.restore()
        self.steps_done = self._steps_before
        self._drop_partial_epoch(self._steps_before)

    def _train_epoch(self, settings, progress):
        # run() snapshots too, but only restores on divergence and Ctrl-C;
        # a bad block surfaces here, mid-epoch, as a ValueError
        self._snapshot = self.state.snapshot()
        self._steps_before = self.steps_done
        try:
            self._stream_epoch(settings, progress)
        except Exception:
            # bad data, or the array library failed to read (I/O): nothing of
            # the epoch is kept; Ctrl-C (not an Exception) is run()'s business
            self._restore()
            raise
        if self.batch_stats[:, 2].sum() == 0:
            self._restore()
            raise ValueError("sample_weight is zero for every row (after class_weight); "
                             "nothing would be learned")

    def _stream_epoch(self, settings, progress):
        reader, batch = self.reader, self.batch
        n = reader.X.shape[0]
        blocks = block_schedule(n, self.block_rows, self.plan.shuffle, self.state.rng)
        start, stop, within = next(blocks)
        pending = reader.submit(0, start, stop)
        # rows that did not fill a batch: (buffer, positions, their CSR rows or None)
        carry = None
        first = 0
        try:
            for i in range(reader.n_blocks):
                rows = pending.result()
                pending = None
                current = i % 2
                _, Y_buf, w_buf = reader.buffers[current]
                k, carried = 0, None
                if carry is not None:
                    previous, positions, carried = carry
                    k = positions.shape[0]
                    for dst, src in zip(reader.buffers[current], reader.buffers[previous]):
                        if dst is not None:  # CSR inputs have no dense buffer
                            dst[batch - k:batch] = src[positions]
                carry = None
                this_order = within
                if i + 1 < reader.n_blocks:
                    # the other buffer is free now: its carried rows were copied out
                    start, stop, within = next(blocks)
                    pending = reader.submit(1 - current, start, stop)
                view = slice(batch - k, batch + rows)
                order = np.concatenate([np.arange(k, dtype=np.int64),
                                        k + this_order.astype(np.int64)])
                total = k + rows
                last_block = i + 1 == reader.n_blocks
                n_batches = -(-total // batch) if last_block else total // batch
                used = min(total, n_batches * batch)
                X_view = reader.features(current, view, carried)
                self._train_batches(X_view, Y_buf[view], w_buf[view], order[:used], first,
                                    first + n_batches, settings, progress)
                first += n_batches
                if used < total:
                    carry = (current, (batch - k) + order[used:],
                             take_rows(X_view, order[used:]) if reader.sparse else None)
        finally:
            if pending is not None:
                # interrupted or failed: let the worker finish before its buffer is reused
                pending.cancel() or pending.exception()


def streamed_metrics(network, X, y, block_rows):
    """Validation metrics of data read in blocks: ``val_loss`` and ``val_error`` or ``val_r2``.

    The same numbers as :func:`fastnn.evaluation.validation_metrics` on the whole arrays
    (up to the order of floating-point sums).

    Parameters
    ----------
    network : fastnn.Network
    X : _Rows, shape (n, d_0)
    y : _Rows
        Targets, as for ``fit``.
    block_rows : int

    Returns
    -------
    dict
    """
    n = X.shape[0]
    loss = errors = 0.0
    r2 = metrics.R2Accumulator()
    architecture = network.architecture
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        try:
            X_block = architecture.features(X.read(start, stop), name="X_val")
            Y_block = architecture.targets(y.read(start, stop), stop - start)
        except (ValueError, TypeError) as error:
            raise StreamDataError(f"validation rows {start}..{stop - 1}: "
                                  f"{_within_block(error)}", start, stop) from None
        A, block_loss = outputs_and_loss(network, X_block, Y_block)
        rows = stop - start
        loss += block_loss * rows
        if architecture.output in codes.REGRESSION_OUTPUTS:
            r2.add(A, Y_block)
        else:
            errors += (1.0 - metrics.accuracy(architecture.output, A, Y_block)) * rows
    result = {"val_loss": loss / n}
    if architecture.output in codes.REGRESSION_OUTPUTS:
        result["val_r2"] = r2.score()
    else:
        result["val_error"] = errors / n
    return result


def _class_counts(network, y, block_rows):
    """Rows per class of targets read block by block (for ``class_weight="balanced"``)."""
    counts = np.zeros(max(network.sizes[-1], 2), dtype=np.int64)
    n = y.shape[0]
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        try:
            Y = network.architecture.targets(y.read(start, stop), stop - start)
        except (ValueError, TypeError) as error:
            raise ValueError(f"y rows {start}..{stop - 1}: {_within_block(error)}") from None
        counts += class_counts(network.output, Y)
    return counts


def fit_streamed(network, X, y, sample_weight, class_weight, validation_data, validation_split,
                 plan, warm_start, block_rows):
    """Train ``network`` on out-of-core data; see :meth:`fastnn.Network.fit`.

    Parameters
    ----------
    network : fastnn.Network
    X : array-like or scipy.sparse matrix, shape (n, d_0)
        Read in blocks of rows (``X[a:b]``), never whole; a sparse ``X``'s
        blocks are converted to the kernels' CSR one by one (see "Sparse inputs").
    y : array-like, shape (n,) or (n, d_L)
        In memory or out-of-core; read block by block alongside ``X``.
    sample_weight : array-like, shape (n,), optional
        In memory (checked whole, up front) or out-of-core (checked per block).
    class_weight : None, "balanced" or dict
        ``"balanced"`` costs one extra pass over ``y`` before training.
    validation_data : (X_val, y_val) or None
        In-memory pairs are converted once; out-of-core ones are evaluated in blocks.
    validation_split : float or None
        Checked; the last rows of ``X`` are held out (and evaluated in blocks).
    plan : fastnn.training.FitPlan
        Checked settings.
    warm_start : bool
    block_rows : int or None
        Rows per block; None for :data:`DEFAULT_BLOCK_BYTES` worth of inputs,
        rounded down to whole batches.

    Returns
    -------
    History
    """
    if block_rows is not None:
        block_rows = check_int("block_rows", block_rows, minimum=1)
    if is_sparse(X):
        check_sparse_structure("X", X, network.sizes[0])
        # rows are sliced from CSR; the other formats slice them slowly or not at all
        X = _Rows(X if X.format == "csr" else X.tocsr())
    else:
        X = _as_rows("X", X)
        check_feature_shape("X", X.shape, network.sizes[0])
    n = X.shape[0]
    y = _as_rows("y", y, n)
    check_target_shape(y.shape, network.output, network.sizes[-1], n)
    if sample_weight is None:
        weights = None
    elif is_out_of_core(sample_weight):
        weights = _as_rows("sample_weight", sample_weight, n)
        if len(weights.shape) != 1:
            raise ValueError(f"sample_weight must have shape ({n},), one weight per row of X; "
                             f"got shape {weights.shape}")
    else:
        # one number per row: cheap to check whole, and then all-zero is caught up front
        weights = _Rows(as_sample_weight(sample_weight, n, network.dtype))
    if block_rows is None:
        block_rows = _default_block_rows(network.sizes[0], network.dtype.itemsize,
                                         min(plan.batch_size, n))

    # the names and the output kind are checked first; "balanced" then counts the
    # labels of all rows, the held-out ones included, as in-memory fit does
    class_weights = class_weight_table(class_weight, network.output, network.sizes[-1])
    if isinstance(class_weight, str):
        class_weights = class_weight_table(class_weight, network.output, network.sizes[-1],
                                           _class_counts(network, y, block_rows))

    validation = None
    if validation_split is not None:
        train, held = hold_out(n, held_out_count(n, validation_split), "last")
        validation = (X.part(held.start, held.stop), y.part(held.start, held.stop))
        X, y = X.part(train.start, train.stop), y.part(train.start, train.stop)
        weights = None if weights is None else weights.part(train.start, train.stop)
        n = X.shape[0]
    elif validation_data is not None:
        X_val, y_val = validation_data
        if is_out_of_core(X_val):
            X_val = _as_rows("X_val", X_val)
            check_feature_shape("X_val", X_val.shape, network.sizes[0])
            y_val = _as_rows("y_val", y_val, X_val.shape[0])
            validation = (X_val, y_val)
        else:
            X_val = network.architecture.features(X_val, name="X_val")
            validation = (X_val, network.architecture.targets(y_val, X_val.shape[0]))

    batch = min(plan.batch_size, n)
    with network.thread_scope():
        reader = _BlockReader(network, X, y, weights, class_weights, block_rows, batch)
        try:
            return StreamRun(network, reader, validation, plan, warm_start, block_rows).run()
        finally:
            reader.close()
