"""Cluster mode for administrators: the worker nodes' state, replicas, jobs and GPU memory, and draining
a node for maintenance (thin handlers over appliance/cluster)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from appliance.accounts import audit
from appliance.cluster import nodes
from appliance.cluster.protocol import ClusterStatus
from appliance.web.auth import principal_of
from appliance.web.deps import services_of
from appliance.web.i18n import N_, Detail
from appliance.web.offload import off_loop


class Drain(msgspec.Struct, forbid_unknown_fields=True):
    drained: bool


def _status(request: Request[Any, Any, Any]) -> ClusterStatus:
    services = services_of(request)
    if services.worker.cluster is None:
        raise NotFoundException(detail=Detail(N_("Cluster mode is off on this appliance.")))
    return services.cluster_status or ClusterStatus()


@get("/api/v1/admin/cluster", opt={"scope": "admin"}, tags=["admin"], summary="Cluster mode: the worker nodes")
@off_loop
def cluster_status(request: Request[Any, Any, Any]) -> ClusterStatus:
    return _status(request)


@post(
    "/api/v1/admin/cluster/nodes/{name:str}/drain",
    opt={"scope": "admin"},
    tags=["admin"],
    status_code=200,
    summary="Drain a worker node (no new jobs; running ones finish) or give it work again",
)
@off_loop
def drain_node(request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[Drain]) -> ClusterStatus:
    _status(request)
    services = services_of(request)
    db = services.databases.get()
    if not nodes.set_drained(db, name, data.drained):
        raise NotFoundException(detail=Detail(N_("%(name)s is not a worker node of this cluster."), name=repr(name)))
    audit.record(
        db,
        "cluster.node_drained" if data.drained else "cluster.node_resumed",
        actor=principal_of(request).user.email,
        target=name,
    )
    services.sync_cluster()
    return services.cluster_status or ClusterStatus()


ROUTES = [cluster_status, drain_node]
