#!/usr/bin/env python3
"""Makes the plain wasm build free of SIMD instructions, in place.

gemm 0.19 (burn-flex's matmul) compiles its wasm simd128 microkernels on every wasm32 build, each
with #[target_feature(enable = "simd128")], and picks them at run time only when its
`wasm-simd128-enable` feature (burn's `simd`, which the plain build leaves out) or
`set_wasm_simd128(true)` says so. The plain build never calls them, but a browser without
WebAssembly SIMD refuses to compile a module that holds even one SIMD instruction. With fat LTO
(the shipping profile, wasm-release) the linker drops them itself; without LTO (the test builds,
profile ci) they stay, 26 functions. This replaces
the body of every function in gemm's simd128 modules (found by name in the module's name section)
with `unreachable`: same index, same type, no locals. The plain build's module then validates
without SIMD (tests/e2e/builtin.test.mjs checks it with `wasm-validate --disable-simd`, and that
the plain build answers as the CLI).

The pattern also takes generic functions instantiated with a type from those modules: they are
reachable only through the simd128 path too. Needs the name section (a profile with
strip = "symbols" would remove it: then this fails, loudly).

usage: strip-simd.py MODULE.wasm   (prints what it replaced, or that there was nothing to replace;
                                    exits 1, leaving the module as it was, when it has no name
                                    section)
"""
import re
import sys

# gemm_f32 / gemm_f64's `microkernel::simd128` modules and the `simd128` gemm entry points the
# gemm-common macros inject into those crates; mangled (legacy: "7simd128") or demangled names
PATTERN = re.compile(rb"gemm_f(32|64)(::|\d+)(.*)(::|\d)simd128")


def leb(buf, i):
    """Unsigned LEB128 at buf[i]: (value, next index)."""
    v, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, i


def enc_leb(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def sections(buf):
    """[(id, start of the section (its id byte), start of payload, end of payload)] of a module."""
    assert buf[:4] == b"\0asm", "not a wasm module"
    i, out = 8, []
    while i < len(buf):
        size, j = leb(buf, i + 1)
        out.append((buf[i], i, j, j + size))
        i = j + size
    return out


def limits(buf, i):
    flags = buf[i]
    _, i = leb(buf, i + 1)
    if flags & 1:
        _, i = leb(buf, i)
    return i


def imported_functions(buf, start):
    n, i = leb(buf, start)
    funcs = 0
    for _ in range(n):
        for _ in range(2):  # module and field names
            ln, i = leb(buf, i)
            i += ln
        kind = buf[i]
        i += 1
        if kind == 0:  # function: type index
            _, i = leb(buf, i)
            funcs += 1
        elif kind == 1:  # table: reftype, limits
            i = limits(buf, i + 1)
        elif kind == 2:  # memory: limits
            i = limits(buf, i)
        elif kind == 3:  # global: valtype, mutability
            i += 2
        elif kind == 4:  # tag: attribute, type index
            _, i = leb(buf, i + 1)
        else:
            raise ValueError(f"unknown import kind {kind}")
    return funcs


def function_names(buf, start, end):
    """{function index: name} from a "name" custom section's function-names subsection."""
    ln, i = leb(buf, start)
    assert buf[i:i + ln] == b"name"
    i += ln
    names = {}
    while i < end:
        sub = buf[i]
        size, j = leb(buf, i + 1)
        if sub == 1:
            n, k = leb(buf, j)
            for _ in range(n):
                idx, k = leb(buf, k)
                ln, k = leb(buf, k)
                names[idx] = bytes(buf[k:k + ln])
                k += ln
        i = j + size
    return names


def main(path):
    buf = bytearray(open(path, "rb").read())
    secs = sections(buf)
    imports = next((imported_functions(buf, s) for sid, _, s, _ in secs if sid == 2), 0)
    names = {}
    for sid, _, s, e in secs:
        if sid == 0:
            ln, i = leb(buf, s)
            if buf[i:i + ln] == b"name":
                names = function_names(buf, s, e)
    if not names:
        sys.exit(f"strip-simd: {path} has no name section: cannot tell gemm's simd128 functions")
    targets = {idx for idx, n in names.items() if PATTERN.search(n)}
    head, start, end = next((h, s, e) for sid, h, s, e in secs if sid == 10)
    n, i = leb(buf, start)
    bodies = []
    for k in range(n):
        size, j = leb(buf, i)
        bodies.append(bytes(buf[j:j + size]))
        i = j + size
    if not any(imports + k in targets for k in range(n)):
        # the shipping plain build (fat LTO) has none: LTO sees that nothing turns them on and drops
        # them. Whether any SIMD is left is for wasm-validate --disable-simd to say (build-web.sh)
        print(f"strip-simd: {path}: no gemm simd128 function in it, nothing to stub")
        return
    replaced = 0
    for k in range(n):
        if imports + k in targets:
            bodies[k] = b"\x00\x00\x0b"  # no locals; unreachable; end
            replaced += 1
    payload = enc_leb(n) + b"".join(enc_leb(len(b)) + b for b in bodies)
    out = buf[:head] + bytes([10]) + enc_leb(len(payload)) + payload + buf[end:]
    open(path, "wb").write(out)
    print(f"strip-simd: {path}: {replaced} of {n} function bodies (gemm's simd128 kernels) replaced by unreachable; "
          f"{len(buf)} -> {len(out)} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
