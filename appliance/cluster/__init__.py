"""Cluster mode: this appliance (web, API, SQLite, licence) is the control node of GPU worker nodes that
hold long-lived model replicas, scheduled by Ray (docs/decisions.md, "Cluster mode on Ray").

- keys.py: the cluster's certificate authority and each node's key file (mutual TLS for all Ray traffic).
- nodes.py: the nodes an administrator issued keys to, and which are drained (SQL next to its noun).
- ray_node.py: how a Ray node is started here: every port fixed, dashboard, client server, autoscaler
  monitor and usage statistics off, spilling off, the object store and its fallback in RAM.
- replica.py: the model replica that runs on a worker node (the transcription pipeline, in memory).
- dispatcher.py: the control node's Ray driver, in its own process (the web server's kernel egress lock
  forbids the sockets Ray opens), placing jobs on replicas and retrying a job whose node stopped.
- client.py: the web server's side: starts the dispatcher and hands it jobs over a Unix socket.
"""
