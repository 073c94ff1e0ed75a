"""config.web_server's event loop: a worker takes one waiting connection per turn of its loop,
so that the workers polling one listening socket share a burst of new connections."""

from __future__ import annotations

import asyncio
import socket

import pytest

from config.web_server import AcceptOneEventLoop, WebWorker

WAITING = 6


def connections_taken(loop: asyncio.AbstractEventLoop) -> tuple[int, int]:
    """Connections the loop's server made after its first turn, and after a while."""
    made = []

    class Count(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            made.append(transport)

    listener = socket.create_server(("127.0.0.1", 0))
    # connected in the kernel, waiting in the listening socket's queue before the server starts
    clients = [socket.create_connection(listener.getsockname()) for _ in range(WAITING)]
    try:
        server = loop.run_until_complete(loop.create_server(Count, sock=listener))
        loop.run_until_complete(asyncio.sleep(0))
        first_turn = len(made)
        loop.run_until_complete(asyncio.sleep(0.3))
        server.close()
        return first_turn, len(made)
    finally:
        for client in clients:
            client.close()
        loop.close()


def test_the_web_loop_takes_one_waiting_connection_per_turn():
    first_turn, in_all = connections_taken(AcceptOneEventLoop())
    assert first_turn < WAITING and in_all == WAITING


def test_asyncios_own_loop_takes_them_all_at_once():
    # what the web loop changes: asyncio accepts every waiting connection (up to the backlog)
    assert connections_taken(asyncio.SelectorEventLoop()) == (WAITING, WAITING)


@pytest.mark.parametrize("by_keyword", [False, True])
def test_the_backlog_is_replaced_however_asyncio_passes_it(monkeypatch, by_keyword):
    seen = {}

    def parent(self, protocol_factory, sock, sslcontext=None, server=None, backlog=100, **kwargs):
        seen["backlog"] = backlog

    monkeypatch.setattr(asyncio.SelectorEventLoop, "_accept_connection", parent)
    loop = AcceptOneEventLoop()
    try:
        if by_keyword:
            loop._accept_connection(None, None, sslcontext=None, server=None, backlog=100)
        else:
            loop._accept_connection(None, None, None, None, 100)
    finally:
        loop.close()
    assert seen == {"backlog": 1}


def test_the_web_workers_run_on_it():
    assert WebWorker.CONFIG_KWARGS["loop"] == "config.web_server:AcceptOneEventLoop"
