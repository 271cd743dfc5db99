import socket

from marketpipe.runtime import localhost


def test_free_port_is_outside_the_range_outgoing_connections_take() -> None:
    # CI failed when `kafka up` bound a controller port that a client's outgoing connection had
    # taken as its source port in the seconds the JVM took to start: ports the kernel hands to
    # outgoing connections must never be offered as listening ports
    low, high = localhost.ephemeral_range()
    ports = {localhost.free_port() for _ in range(50)}
    assert all(not low <= port <= high for port in ports), sorted(ports)
    assert len(ports) > 40  # random, so two callers rarely get the same port
    for port in list(ports)[:5]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_ephemeral_range_falls_back_when_the_kernel_file_is_unreadable(tmp_path) -> None:
    assert localhost.ephemeral_range(tmp_path / "missing") == (32768, 60999)
    (tmp_path / "range").write_text("10000\t65000\n")
    assert localhost.ephemeral_range(tmp_path / "range") == (10000, 65000)


def test_free_port_skips_ports_in_use(monkeypatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        held.listen()
        with socket.socket() as other:  # a port free a moment ago, for the third pick
            other.bind(("127.0.0.1", 0))
            free = other.getsockname()[1]
        picks = iter([taken, taken, free])
        monkeypatch.setattr(localhost, "_candidate", lambda low, high, rng: next(picks))
        monkeypatch.setattr(localhost, "ephemeral_range", lambda path=None: (60000, 60001))
        assert localhost.free_port() == free
