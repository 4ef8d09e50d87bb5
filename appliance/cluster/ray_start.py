"""`ray start` as this appliance needs it: `python -m appliance.cluster.ray_start start ...`.

Three things Ray's CLI does that would reach beyond the cluster or open a door, turned off here and
nowhere else (Ray's version is pinned exactly, and tests/cluster/test_cluster.py traces every process
of every node, so a new Ray that did them again would fail there):

- it starts the Ray Client server (a way to run code, port 10001) whenever grpc is importable, and
  refuses port 0: told, as its own rule allows, that the client's dependencies are missing;
- with the dashboard off it still starts a "dashboard" process whose only module reports usage: even
  with usage statistics disabled it probes the cloud metadata address (169.254.169.254, DNS for
  metadata.google.internal) and sends a "usage disabled" report: not started at all;
- it asks the kernel for a route to 8.8.8.8 to learn the node's address even when it was given one:
  answered with the address it was given.

Ray's other processes on the node (its agents, its workers) inherit RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
from ray_node.environment(): with it, the few of them that want "this node's address" for a log line
take loopback instead of that probe; every process that needs the real address is passed it.
"""

from __future__ import annotations

import sys


def _given_address(argv: list[str]) -> str | None:
    for index, arg in enumerate(argv):
        if arg == "--node-ip-address" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--node-ip-address="):
            return arg.split("=", 1)[1]
    return None


def main() -> None:
    from ray._private import ray_constants, services
    from ray.scripts import scripts

    # This process is a cluster node (the variable, inherited by its helpers, is for them).
    ray_constants.ENABLE_RAY_CLUSTER = True
    scripts.get_ray_client_dependency_error = lambda: ImportError("the Ray Client server is not used by this appliance")
    services.start_api_server = lambda *args, **kwargs: (None, None)
    address = _given_address(sys.argv)
    if address:
        services.get_node_ip_address = lambda address_=None: address
    scripts.main()


if __name__ == "__main__":
    main()
