"""Two ``govsign serve`` nodes on one PostgreSQL schema and one SoftHSM2 token directory, behind
HAProxy on 127.0.0.1 (the shape ``scripts/cluster`` starts by hand).

The nodes share the suite's embedded data dir (``hsm_data_dir``: its softhsm2.conf, token
directory, PIN and API server key), as nodes of a deployment share a network HSM and their
secrets; each node is its own process with its own PKCS#11 login, and its own metrics directory
(``metrics/<machine>-<host>-<port>`` under the data dir).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from helpers.cli import GOVSIGN, free_port

STARTUP_SECONDS = 60.0

HAPROXY_CONFIG = """\
global
    maxconn 512

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    # a request that could not reach a node (it is down) goes to another one; a request that
    # reached a node is never sent twice
    retries 3
    option redispatch

frontend govsign
    bind 127.0.0.1:{port}
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
{servers}
"""


def haproxy_config(port: int, nodes: dict[str, int]) -> str:
    """HAProxy's configuration: round robin over the nodes, each checked on /readyz twice a second."""
    servers = "\n".join(
        f"    server {name} 127.0.0.1:{node_port} check inter 500 fall 2 rise 2" for name, node_port in nodes.items()
    )
    return HAPROXY_CONFIG.format(port=port, servers=servers)


@dataclass
class Node:
    """One ``govsign serve`` process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no shutdown, no lease given back, requests in flight lost."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@dataclass
class Cluster:
    """The nodes and the load balancer in front of them."""

    nodes: dict[str, Node]
    haproxy: subprocess.Popen[bytes]
    port: int
    workdir: Path
    stopped: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def node_with_pid(self, pid: int) -> Node | None:
        return next((node for node in self.nodes.values() if node.process.pid == pid), None)

    def logs(self) -> str:
        return "\n".join(
            f"--- {node.name}\n{node.log.read_text(errors='replace')[-4000:]}" for node in self.nodes.values()
        )


def _wait_ready(url: str, processes: list[subprocess.Popen[bytes]], describe: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"{describe}: a process exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{describe}: {url} not ready within {STARTUP_SECONDS} s")


@contextlib.contextmanager
def running_cluster(env: dict[str, str], workdir: Path, names: tuple[str, ...] = ("a", "b")) -> Iterator[Cluster]:
    """Start the nodes (``govsign serve``, one worker each) and HAProxy; stop everything at the end."""
    haproxy_binary = "haproxy"
    ports = {name: free_port() for name in names}
    port = free_port()
    nodes: dict[str, Node] = {}
    haproxy: subprocess.Popen[bytes] | None = None
    try:
        for name, node_port in ports.items():
            log = workdir / f"node-{name}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [GOVSIGN, "serve", "--port", str(node_port)],
                    env=env,
                    cwd=workdir,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            nodes[name] = Node(name=name, port=node_port, process=process, log=log)
        for node in nodes.values():
            _wait_ready(
                f"{node.url}/readyz", [node.process], f"node {node.name}: {node.log.read_text(errors='replace')}"
            )
        config = workdir / "haproxy.cfg"
        config.write_text(haproxy_config(port, ports))
        haproxy_log = workdir / "haproxy.log"
        with haproxy_log.open("wb") as sink:
            haproxy = subprocess.Popen(
                [haproxy_binary, "-db", "-f", str(config)], stdout=sink, stderr=subprocess.STDOUT, env=dict(os.environ)
            )
        _wait_ready(f"http://127.0.0.1:{port}/readyz", [haproxy], f"haproxy: {haproxy_log.read_text(errors='replace')}")
        # both servers up in HAProxy's view (rise 2 at 0.5 s) before traffic starts
        time.sleep(1.2)
        yield Cluster(nodes=nodes, haproxy=haproxy, port=port, workdir=workdir)
    finally:
        if haproxy is not None:
            haproxy.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                haproxy.wait(timeout=10)
            if haproxy.poll() is None:
                haproxy.kill()
        for node in nodes.values():
            if node.alive:
                node.process.terminate()
        for node in nodes.values():
            try:
                node.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout=10)
