"""A sweep on an existing Dask cluster (`stagewise simulate --windows ... --cluster
tcp://HOST:PORT`): the only module that imports dask, from the optional `cluster` extra
(`pip install 'stagewise[cluster]'`). The sweep is sent through the client's
concurrent.futures executor; a worker plugin gives every worker, those joining later too,
the sweep's inputs once, as a local worker's initializer does. Each worker needs stagewise
installed (the same version)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import Any

from stagewise import sweep as sweeps
from stagewise.errors import ConfigError, UsageError

INSTALL = "pip install 'stagewise[cluster]'"
CONNECT_SECONDS = 10


@contextlib.contextmanager
def cluster_executor(address: str, sweep: sweeps.Sweep) -> Iterator[Executor]:
    """An executor on the Dask scheduler at `address` whose workers hold `sweep`'s inputs;
    the inputs are dropped and the client closed afterwards. ConfigError without the extra;
    UsageError when no scheduler answers at `address`."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError(
            f"--cluster needs dask.distributed, the optional cluster extra: {INSTALL}"
        ) from None
    try:
        client = Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as e:
        raise UsageError(f"--cluster {address}: no Dask scheduler answers there ({e})") from None
    plugin = _plugin(sweep)
    try:
        client.register_plugin(plugin, name=plugin.name)
        try:
            yield client.get_executor(pure=False)
        finally:
            client.unregister_worker_plugin(plugin.name)
    finally:
        client.close()


def _plugin(sweep: sweeps.Sweep) -> Any:
    from distributed import WorkerPlugin

    class SweepInputs(WorkerPlugin):
        """Loads a sweep's inputs on each worker as it joins; drops them when removed."""

        def __init__(self, token: str, inputs: sweeps.Inputs) -> None:
            self.name = f"stagewise-sweep-{token}"
            self.token = token
            self.inputs = inputs

        def setup(self, worker: Any) -> None:
            sweeps.prepare_worker(self.token, self.inputs)

        def teardown(self, worker: Any) -> None:
            sweeps.unload(self.token)

    return SweepInputs(sweep.token, sweep.inputs)
