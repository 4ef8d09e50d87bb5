"""`ray start`, with Ray's Client server left out: `python -m appliance.cluster.ray_start start ...`.

Ray's CLI starts the Client server (a way to run code on the cluster, port 10001) whenever grpc is
importable, and refuses port 0; its own rule is "no client dependencies, no client server". This
launcher tells it exactly that, and nothing else differs from `ray start`.
"""

from __future__ import annotations


def main() -> None:
    from ray.scripts import scripts

    scripts.get_ray_client_dependency_error = lambda: ImportError("the Ray Client server is not used by this appliance")
    scripts.main()


if __name__ == "__main__":
    main()
