"""NumPy's ``Generator(PCG64(SeedSequence(seed))).integers(n)`` in pure Python.

The server's ``random`` bot (``igym_core.builtin.policies_basic.RandomActions``) samples a copy of
the seat's Gymnasium ``Discrete`` space, seeded with ``space.seed(seed)`` at every episode start:
``start + Generator(PCG64(SeedSequence(seed))).integers(n)``. Pyodide has no NumPy here, so the
browser draws the same numbers with this module: NumPy's ``SeedSequence`` (pool of 4 words, the
``hashmix``/``mix`` functions), ``PCG64`` (128-bit LCG with XSL-RR output, 32-bit draws taken
from halves of a 64-bit output) and ``integers`` for a range below 2**32 (Lemire's method, as
NumPy's ``buffered_bounded_lemire_uint32``). The test compares it with NumPy on many seeds.
"""

from __future__ import annotations

__all__ = ["DiscreteSampler", "Pcg64", "seed_sequence_state"]

_M32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1
_M128 = (1 << 128) - 1
_INIT_A = 0x43B0D7E5
_MULT_A = 0x931E8875
_INIT_B = 0x8B51F9DD
_MULT_B = 0x58F38DED
_MIX_MULT_L = 0xCA01F9DD
_MIX_MULT_R = 0x4973F715
_XSHIFT = 16
_POOL_SIZE = 4
_PCG_MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645


def _words(seed: int) -> list[int]:
    """An int as NumPy's SeedSequence sees it: 32-bit words, least significant first."""
    if seed < 0:
        raise ValueError(f"a seed must be 0 or more; got {seed}.")
    if seed == 0:
        return [0]
    words = []
    while seed > 0:
        words.append(seed & _M32)
        seed >>= 32
    return words


def seed_sequence_state(seed: int, n_words64: int) -> list[int]:
    """``SeedSequence(seed).generate_state(n_words64, np.uint64)`` as Python ints."""
    hash_const = _INIT_A

    def hashmix(value: int) -> int:
        nonlocal hash_const
        value = (value ^ hash_const) & _M32
        hash_const = (hash_const * _MULT_A) & _M32
        value = (value * hash_const) & _M32
        return value ^ (value >> _XSHIFT)

    def mix(x: int, y: int) -> int:
        result = (_MIX_MULT_L * x - _MIX_MULT_R * y) & _M32
        return result ^ (result >> _XSHIFT)

    entropy = _words(seed)
    pool = [hashmix(entropy[i] if i < len(entropy) else 0) for i in range(_POOL_SIZE)]
    for i_src in range(_POOL_SIZE):
        for i_dst in range(_POOL_SIZE):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hashmix(pool[i_src]))
    for i_src in range(_POOL_SIZE, len(entropy)):
        for i_dst in range(_POOL_SIZE):
            pool[i_dst] = mix(pool[i_dst], hashmix(entropy[i_src]))

    hash_const = _INIT_B
    words32 = []
    for i in range(n_words64 * 2):
        value = (pool[i % _POOL_SIZE] ^ hash_const) & _M32
        hash_const = (hash_const * _MULT_B) & _M32
        value = (value * hash_const) & _M32
        words32.append(value ^ (value >> _XSHIFT))
    return [words32[2 * i] | (words32[2 * i + 1] << 32) for i in range(n_words64)]


class Pcg64:
    """NumPy's ``PCG64`` bit generator seeded through ``SeedSequence(seed)``."""

    __slots__ = ("_has_uint32", "_inc", "_state", "_uinteger")

    def __init__(self, seed: int) -> None:
        s0, s1, i0, i1 = seed_sequence_state(seed, 4)
        init_state = (s0 << 64) | s1
        init_seq = (i0 << 64) | i1
        self._inc = ((init_seq << 1) | 1) & _M128
        self._state = 0
        self._step()
        self._state = (self._state + init_state) & _M128
        self._step()
        self._has_uint32 = False
        self._uinteger = 0

    def _step(self) -> None:
        self._state = (self._state * _PCG_MULTIPLIER + self._inc) & _M128

    def next_uint64(self) -> int:
        self._step()
        state = self._state
        value = ((state >> 64) ^ state) & _M64
        rot = state >> 122
        return ((value >> rot) | (value << ((-rot) & 63))) & _M64

    def next_uint32(self) -> int:
        if self._has_uint32:
            self._has_uint32 = False
            return self._uinteger
        value = self.next_uint64()
        self._has_uint32 = True
        self._uinteger = value >> 32
        return value & _M32

    def integers(self, n: int) -> int:
        """``Generator.integers(n)`` (int64, ``0 <= x < n``) for ``1 <= n <= 2**32``."""
        rng = n - 1
        if rng == 0:
            return 0
        if rng == _M32:
            return self.next_uint32()
        if not 0 < rng < _M32:
            raise ValueError(f"integers(n) is implemented for 1 <= n <= 2**32; got n={n}.")
        rng_excl = rng + 1
        m = self.next_uint32() * rng_excl
        leftover = m & _M32
        if leftover < rng_excl:
            threshold = (_M32 - rng) % rng_excl
            while leftover < threshold:
                m = self.next_uint32() * rng_excl
                leftover = m & _M32
        return m >> 32


class DiscreteSampler:
    """The server's random bot for a ``Discrete(n, start)`` seat: the same actions for the same seeds.

    ``reset(seed=...)`` re-seeds it as ``space.seed(seed)`` does; ``act`` draws ``space.sample()``.
    Before the first reset it draws from ``seed`` (the ``RandomPolicy.seed`` of the config; NumPy
    would use fresh entropy for ``None``, and so does this, from ``os.urandom``).
    """

    __slots__ = ("_generator", "n", "start")

    def __init__(self, n: int, start: int = 0, *, seed: int | None = None) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"a Discrete space needs n >= 1; got {n!r}.")
        self.n = n
        self.start = int(start)
        self._generator = Pcg64(_fresh() if seed is None else seed)

    def reset(self, *, seed: int) -> None:
        self._generator = Pcg64(seed)

    def act(self, observation: object) -> int:
        if isinstance(observation, dict) and "action_mask" in observation:
            raise ValueError(
                "the random bot in the browser cannot sample with an action mask (the server samples "
                "with NumPy's Generator.choice, which this runtime does not reproduce); give the seat a "
                "Python policy that reads the mask, or run this scene with runtime='server'."
            )
        return self.start + self._generator.integers(self.n)


def _fresh() -> int:
    import os

    return int.from_bytes(os.urandom(16), "little")
