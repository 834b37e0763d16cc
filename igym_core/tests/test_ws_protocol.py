"""igym's WebSocket protocol for uvicorn: the ``igym.direct`` channel and the plain-frame shortcut.

The protocol is driven exactly as uvicorn drives it (``connection_made``, ``data_received``) with a
transport that records what is written, and a real ``websockets`` client protocol on the other end
that frames, masks and parses every byte.
"""

from __future__ import annotations

import asyncio

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from igym_core.server.ws_protocol import DIRECT_EXTENSION, IgymWebSocketProtocol, frame_header


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.buffered = 0
        self.closing = False
        self.reading = True

    def write(self, data) -> None:
        self.written.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def take(self) -> bytes:
        data = b"".join(self.written)
        self.written.clear()
        return data


class Harness:
    """A server protocol with an app that accepts and collects what ASGI ``receive`` delivers."""

    def __init__(self) -> None:
        self.via_asgi: list[bytes] = []
        self.log: list[bytes] = []  # everything handled, by either path, in the order it was handled
        self.scope: dict | None = None

        async def app(scope, receive, send):
            self.scope = scope
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            while True:
                event = await receive()
                if event["type"] == "websocket.disconnect":
                    return
                data = event.get("bytes") or event.get("text", "").encode()
                self.via_asgi.append(data)
                self.log.append(data)

        config = Config(app, ws_per_message_deflate=False, log_level="warning")
        config.load()
        self.transport = RecordingTransport()
        self.protocol = IgymWebSocketProtocol(config, ServerState(), {})
        self.protocol.connection_made(self.transport)
        self.client = ClientProtocol(parse_uri("ws://127.0.0.1:8000/ws"))

    async def open(self) -> None:
        self.client.send_request(self.client.connect())
        for chunk in self.client.data_to_send():
            self.protocol.data_received(chunk)
        await asyncio.sleep(0.01)  # the app task runs and accepts
        self.client.receive_data(self.transport.take())
        self.client.events_received()
        assert self.scope is not None

    @property
    def direct(self):
        return self.scope["extensions"][DIRECT_EXTENSION]

    def client_bytes(self, *payloads: bytes) -> bytes:
        for payload in payloads:
            self.client.send_binary(payload)
        return b"".join(self.client.data_to_send())

    def received_by_client(self) -> list[bytes]:
        self.client.receive_data(self.transport.take())
        return [
            e.data
            for e in self.client.events_received()
            if isinstance(e, Frame) and e.opcode is Opcode.BINARY
        ]

    async def settle(self) -> None:
        for _ in range(5):
            await asyncio.sleep(0)


def _input(seq: int, pad: int = 0) -> bytes:
    return msgpack.packb({"type": "input", "game_id": "g" * (1 + pad), "seq": seq, "keys": ["ArrowLeft"]})


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_the_scope_offers_the_direct_channel():
    h = Harness()
    await h.open()
    assert h.direct.open and not h.direct.busy and h.direct.receiver is None


@pytest.mark.anyio
async def test_a_receiver_gets_plain_client_messages_as_they_arrive():
    h = Harness()
    await h.open()
    got: list[bytes] = []
    h.direct.receiver = lambda data: got.append(data) or True
    messages = [_input(i) for i in range(5)]
    for message in messages:
        h.protocol.data_received(h.client_bytes(message))
    assert got == messages  # unmasked, whole, in order, without a task switch
    assert h.via_asgi == [] and h.transport.reading


@pytest.mark.anyio
async def test_a_step_batch_sized_message_takes_the_shortcut_too(monkeypatch):
    """A 16-bit length (a browser-run game's batch of steps is about 1.5 kB) is parsed here as well;
    a 64-bit one, or one over uvicorn's ws_max_size, is the generic parser's."""
    h = Harness()
    await h.open()
    got: list[bytes] = []
    h.direct.receiver = lambda data: got.append(data) or True
    generic: list[bytes] = []
    monkeypatch.setattr(WebSocketsSansIOProtocol, "data_received", lambda self, data: generic.append(data))
    messages = [bytes([n % 256]) * size for n, size in enumerate([126, 1500, 40_000, 65_535])]
    for message in messages:
        h.protocol.data_received(h.client_bytes(message))
    assert got == messages and generic == []
    h.protocol.data_received(h.client_bytes(b"x" * 65_536))
    assert len(generic) == 1 and got == messages
    h.protocol._max_plain = 1000 + 8  # as under ws_max_size=1000
    h.protocol.data_received(h.client_bytes(b"y" * 1001))
    assert len(generic) == 2 and got == messages


@pytest.mark.anyio
async def test_declined_messages_go_through_asgi_receive_in_order():
    h = Harness()
    await h.open()
    got: list[bytes] = []
    h.direct.receiver = lambda data: data.endswith(b"keep") and (got.append(data) or True)
    h.protocol.data_received(h.client_bytes(b"first: decline"))
    # Something is queued ahead: the receiver must not overtake it, even for a message it would take.
    h.protocol.data_received(h.client_bytes(b"second: keep"))
    await h.settle()
    assert h.via_asgi == [b"first: decline", b"second: keep"] and got == []
    h.protocol.data_received(h.client_bytes(b"third: keep"))
    assert got == [b"third: keep"]


@pytest.mark.anyio
async def test_messages_that_are_not_plain_take_the_generic_path_and_arrive_intact():
    h = Harness()
    await h.open()
    got: list[bytes] = []
    h.direct.receiver = lambda data: got.append(data) or True
    big = b"x" * 5000  # 16-bit length
    h.protocol.data_received(h.client_bytes(big))
    two = h.client_bytes(_input(1), _input(2))  # two frames in one read
    h.protocol.data_received(two)
    split = h.client_bytes(_input(3))
    h.protocol.data_received(split[:1])  # a frame cut after its first byte
    h.protocol.data_received(split[1:])
    split = h.client_bytes(_input(4))
    h.protocol.data_received(split[:2])  # ... after its second: the parser waits for the mask
    h.protocol.data_received(split[2:])
    # A fragmented message: first part, then the rest.
    h.client.send_binary(b"part one, ", fin=False)
    h.client.send_continuation(b"part two", fin=True)
    h.protocol.data_received(b"".join(h.client.data_to_send()))
    assert got == [big, _input(1), _input(2), _input(3), _input(4), b"part one, part two"]


@pytest.mark.anyio
async def test_text_frames_and_pings_are_left_to_uvicorn():
    h = Harness()
    await h.open()
    got: list[bytes] = []
    h.direct.receiver = lambda data: got.append(data) or True
    h.client.send_text(b"hello")
    h.client.send_ping(b"p1")
    h.protocol.data_received(b"".join(h.client.data_to_send()))
    await h.settle()
    assert got == [] and h.via_asgi == [b"hello"]
    h.client.receive_data(h.transport.take())
    pongs = [e for e in h.client.events_received() if isinstance(e, Frame) and e.opcode is Opcode.PONG]
    assert [p.data for p in pongs] == [b"p1"]


@pytest.mark.anyio
async def test_a_failing_receiver_does_not_lose_the_message():
    h = Harness()
    await h.open()

    def broken(data: bytes) -> bool:
        raise RuntimeError("bug in a receiver")

    h.direct.receiver = broken
    h.protocol.data_received(h.client_bytes(b"still delivered"))
    await h.settle()
    assert h.via_asgi == [b"still delivered"]


@pytest.mark.anyio
@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
async def test_written_frames_parse_as_binary_messages_of_any_size(size):
    h = Harness()
    await h.open()
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert h.direct.write_binary(payload) is True
    assert h.received_by_client() == [payload]


@pytest.mark.anyio
async def test_a_frame_is_not_written_while_the_buffer_holds_data():
    h = Harness()
    await h.open()
    h.transport.buffered = 300  # the client has not taken the previous frame
    assert h.direct.busy and h.direct.write_binary(b"frame") is False and h.transport.written == []
    h.transport.buffered = 0
    assert h.direct.write_binary(b"frame") is True and h.received_by_client() == [b"frame"]


@pytest.mark.anyio
async def test_writing_after_close_raises_connection_error():
    h = Harness()
    await h.open()
    h.protocol.connection_lost(None)
    assert not h.direct.open
    with pytest.raises(ConnectionError):
        h.direct.write_binary(b"late frame")


def test_frame_header_lengths():
    assert frame_header(5) == b"\x82\x05"
    assert frame_header(126) == b"\x82\x7e\x00\x7e"
    assert frame_header(65536) == b"\x82\x7f" + (65536).to_bytes(8, "big")


@settings(max_examples=60, deadline=None)
@given(
    payloads=st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=8),
    declined=st.sets(st.integers(min_value=0, max_value=11)),
)
def test_any_chunking_delivers_every_message_once_in_order(payloads, cuts, declined):
    """Whatever the TCP reads look like, the receiver and ASGI together get each message once, in
    order: the receiver never takes a message while an earlier one is still queued."""

    async def scenario() -> None:
        h = Harness()
        await h.open()
        tagged = [index.to_bytes(1, "big") + payload for index, payload in enumerate(payloads)]

        def receiver(data: bytes) -> bool:
            if data[0] in declined:
                return False
            h.log.append(data)
            return True

        h.direct.receiver = receiver
        stream = h.client_bytes(*tagged)
        position = 0
        for cut in [*cuts, len(stream)]:
            if position >= len(stream):
                break
            h.protocol.data_received(stream[position : position + cut])
            position += cut
            await h.settle()
        if position < len(stream):
            h.protocol.data_received(stream[position:])
        await h.settle()
        assert h.log == tagged

    asyncio.run(scenario())
