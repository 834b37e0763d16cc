"""Server CPU per browser-run step, part by part, in one process (no sockets): what
``bench/pyodide_ingest.py`` measures end to end, split so that a change to one part can be judged.

For a batch of 15 honest slime steps (2 agents, as ``pyodide_ingest.py``'s pages send them) it times,
per step: msgpack decode of the frame and ``decode_step_batch`` (the general path, taken by a batch the
server refuses), the server's decoder taking the frame straight into the batch's struct
(``MessageDecoder`` with ``StepBatchMessage.wire``, then ``step_batch_of_frame``: what a good batch
takes), ``GameLedger.accept``, ``step_rows``,
``Recorder.write_many`` (``write`` per row where it does not exist) into the built-in JSONL sink (the
row merge and ``encode_line``; and with ``json_plain=True``, as the runtime writes a batch of plain
values), and the whole path. Runs are interleaved (each part once per round),
the median of the rounds is printed. Times are this process's CPU time (``time.process_time``), so
that other work on a shared machine disturbs them less.

Run: ``uv run python bench/ingest_path.py [--rounds 15] [--batches 400]``. Nothing passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgpack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pyodide_ingest import BATCH_STEPS, _batch_bytes, _packed_chunks, _templates  # noqa: E402

from igym_core.builtin.sink_jsonl import JsonlSink, JsonlSinkConfig, encode_line  # noqa: E402
from igym_core.data.recorder import Recorder  # noqa: E402
from igym_core.protocol.messages import MessageDecoder  # noqa: E402
from igym_core.runtime import records  # noqa: E402
from igym_pyodide_p2p.ingest import GameLedger, decode_step_batch, step_batch_of_frame, step_rows  # noqa: E402
from igym_pyodide_p2p.messages import StepBatchMessage  # noqa: E402
from igym_pyodide_p2p.options import PyodideOptions  # noqa: E402


def _ledger(options: PyodideOptions) -> GameLedger:
    ok = {"left": lambda a: type(a) is int and 0 <= a < 4, "right": lambda a: type(a) is int and 0 <= a < 6}
    ledger = GameLedger(actions_ok=ok, humans=["left"], fps=30, max_steps=None, options=options)
    ledger.open_episode(1, 0.0)
    return ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batches", type=int, default=400)
    args = parser.parse_args()
    options = PyodideOptions()
    chunks = _packed_chunks(_templates(args.batches * BATCH_STEPS))
    frames = [_batch_bytes("g-1", n + 1, chunk) for n, chunk in enumerate(chunks)]
    datas = [msgpack.unpackb(f, raw=False, strict_map_key=False) for f in frames]
    ids = records.game_ids(game_id="g-1", scene_id="slime", instance=0, participant_ids=["p-1"])
    players = {"left": "p-1"}
    steps = args.batches * BATCH_STEPS
    directory = Path(tempfile.mkdtemp(prefix="igym-bench-ingest-"))
    sink = JsonlSink(JsonlSinkConfig(), directory)
    recorder = Recorder([sink], base={"experiment_id": "bench", "run_id": "r", "study_version": "1"})
    later = 1e9  # every step is in the past for the ledger

    def decode() -> None:
        for frame in frames:
            msgpack.unpackb(frame, raw=False, strict_map_key=False)

    def validate() -> None:
        for data in datas:
            decode_step_batch(data, options)

    batches = [decode_step_batch(d, options) for d in datas]

    def accept() -> None:
        ledger = _ledger(options)
        for batch in batches:
            ledger.accept(batch, later)

    def rows() -> None:
        for batch in batches:
            step_rows(ids, 1, batch.steps, players=players, t_server_ms=1.7e12)

    built = [step_rows(ids, 1, b.steps, players=players, t_server_ms=1.7e12) for b in batches]

    def write() -> None:
        write_many = getattr(recorder, "write_many", None)
        for batch_rows in built:
            if write_many is not None:
                write_many(records.STEPS, batch_rows)
            else:
                for row in batch_rows:
                    recorder.write(records.STEPS, row)
        sink._take()
        sink._unstored = 0

    plain_ok = "json_plain" in inspect.signature(recorder.write_many).parameters

    def write_plain() -> None:  # rows vouched for (json_plain): the sink skips its per-row check
        for batch_rows in built:
            recorder.write_many(records.STEPS, batch_rows, json_plain=True)
        sink._take()
        sink._unstored = 0

    fulls = [{**recorder.base, "timestamp": "2026-12-05T04:00:00.000Z", **r} for b in built for r in b]

    def encode() -> None:
        for row in fulls:
            encode_line(row)

    decoder = MessageDecoder.for_runtimes([("pyodide", [StepBatchMessage])])

    def frame_decode() -> None:  # the server's decoder: straight into the batch's struct
        for frame in frames:
            message = decoder.decode(frame)
            step_batch_of_frame(message.batch, frame, options)

    def whole() -> None:
        ledger = _ledger(options)
        write_record = recorder.write
        write_many = getattr(recorder, "write_many", None)
        for frame in frames:
            message = decoder.decode(frame)
            batch = step_batch_of_frame(message.batch, frame, options)
            accepted = ledger.accept(batch, later)
            rows = step_rows(ids, batch.episode, accepted.steps, players=players, t_server_ms=1.7e12)
            if plain_ok:  # as the pyodide runtime records a batch of plain values (host.record_many)
                write_many(records.STEPS, rows, json_plain=True)
            elif write_many is not None:  # before json_plain existed
                write_many(records.STEPS, rows)
            else:  # before write_many existed
                for row in rows:
                    write_record(records.STEPS, row)
        sink._take()
        sink._unstored = 0

    parts = {
        "msgpack": decode,
        "decode_step_batch": validate,
        "frame decode (both above)": frame_decode,
        "accept": accept,
        "step_rows": rows,
        "recorder.write": write,
        **({"recorder.write json_plain": write_plain} if plain_ok else {}),
        "  of which encode_line": encode,
        "whole path": whole,
    }
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(args.rounds):
        for name, part in parts.items():
            began = time.process_time()
            part()
            times[name].append((time.process_time() - began) / steps * 1e6)
    for name, values in times.items():
        print(f"{name:>24}: {statistics.median(values):6.2f} us per step (2 rows)")
    asyncio.run(sink.close())


if __name__ == "__main__":
    main()
