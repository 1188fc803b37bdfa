"""Seeded fuzzing of the frame decoders registered in ``bench/fuzz_targets.py``.

    .venv/bin/python bench/fuzz.py                       # every target, 1,000,000 inputs each
    .venv/bin/python bench/fuzz.py thingmagic-responses -n 200000 --seed 7

Inputs are a mix of random bytes, real frames from the target's corpus mutated (bit flips, byte
changes, insertions, deletions, truncation, splices) and runs of valid frames with garbage
between them. A decoder must never raise on wire input: any exception the target does not list
as allowed is reported with the seed, the input number and the input, and the run fails.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence

from fuzz_targets import TARGETS, FuzzTarget

Mutator = Callable[[random.Random, bytearray, Sequence[bytes]], None]


def _flip_bit(rng: random.Random, buf: bytearray, _: Sequence[bytes]) -> None:
    if buf:
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)


def _set_byte(rng: random.Random, buf: bytearray, _: Sequence[bytes]) -> None:
    if buf:
        buf[rng.randrange(len(buf))] = rng.choice((0x00, 0xFF, 0xF8, 0xF9, rng.randrange(256)))


def _insert(rng: random.Random, buf: bytearray, _: Sequence[bytes]) -> None:
    at = rng.randrange(len(buf) + 1)
    buf[at:at] = rng.randbytes(rng.randint(1, 8))


def _delete(rng: random.Random, buf: bytearray, _: Sequence[bytes]) -> None:
    if buf:
        at = rng.randrange(len(buf))
        del buf[at : at + rng.randint(1, 8)]


def _truncate(rng: random.Random, buf: bytearray, _: Sequence[bytes]) -> None:
    del buf[rng.randrange(len(buf) + 1) :]


def _splice(rng: random.Random, buf: bytearray, corpus: Sequence[bytes]) -> None:
    other = rng.choice(corpus)
    buf[rng.randrange(len(buf) + 1) :] = other[rng.randrange(len(other) + 1) :]


MUTATORS: tuple[Mutator, ...] = (_flip_bit, _set_byte, _insert, _delete, _truncate, _splice)


def make_input(rng: random.Random, corpus: Sequence[bytes]) -> bytes:
    kind = rng.random()
    if kind < 0.2 or not corpus:
        return rng.randbytes(rng.randint(0, 300))
    if kind < 0.4:
        frames = [rng.choice(corpus) for _ in range(rng.randint(1, 4))]
        return b"".join(rng.randbytes(rng.randint(0, 12)) + f for f in frames)
    buf = bytearray(rng.choice(corpus))
    for _ in range(rng.randint(1, 4)):
        rng.choice(MUTATORS)(rng, buf, corpus)
    return bytes(buf)


def run(name: str, target: FuzzTarget, inputs: int, seed: int) -> bool:
    rng = random.Random(f"{seed}:{name}")
    fed = frames = 0
    started = time.perf_counter()
    for number in range(inputs):
        data = make_input(rng, target.corpus)
        fed += len(data)
        try:
            frames += target.feed(data)
        except target.allowed:
            pass
        except Exception as exc:  # the point of fuzzing: anything else is a finding
            print(f"{name}: seed {seed} input {number} raised {exc!r}: {data.hex(' ')}")
            return False
    elapsed = time.perf_counter() - started
    print(
        f"{name}: {inputs:,} inputs, {fed:,} bytes, {frames:,} frames in {elapsed:.1f} s "
        f"({inputs / elapsed:,.0f} inputs/s); {target.stats.as_dict()}"
    )
    if target.parsed:
        print(f"{name}: parsed {dict(sorted(target.parsed.items()))}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", choices=[[], *TARGETS], default=[])
    parser.add_argument("-n", "--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    names = args.targets or list(TARGETS)
    results = [run(name, TARGETS[name](), args.inputs, args.seed) for name in names]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
