"""Installation: the binary a user installs (`cargo install --locked --path crates/kinesin`, the
release profile) carries no debug info — it was 159 MB with it — while the `profiling` profile
keeps it for perf and debuggers."""

import os
import struct
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def elf_section_names(path):
    """The section names of a 64-bit little-endian ELF file, read from its section headers."""
    with open(path, "rb") as f:
        data = f.read(64)
        assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not a 64-bit LE ELF file"
        e_shoff, = struct.unpack_from("<Q", data, 0x28)
        e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        f.seek(e_shoff)
        headers = f.read(e_shentsize * e_shnum)
        sections = [struct.unpack_from("<IIQQQQ", headers, i * e_shentsize) for i in range(e_shnum)]
        strtab = sections[e_shstrndx]
        f.seek(strtab[4])
        names = f.read(strtab[5])
    return {names[s[0]:names.index(b"\0", s[0])].decode() for s in sections}


def test_release_binary_has_no_debug_info():
    binary = os.environ["KINESIN_BIN"]
    if "/release/" not in binary:
        import pytest

        pytest.skip(f"KINESIN_BIN={binary} is not a release build")
    names = elf_section_names(binary)
    assert ".text" in names, names
    debug = sorted(n for n in names if n.startswith(".debug_"))
    assert not debug, f"the release binary carries debug sections {debug}: set debug = false in [profile.release]"
    size = os.path.getsize(binary)
    assert size < 80 * 1024 * 1024, f"the release binary is {size} bytes"


def test_profiling_profile_keeps_debug_info():
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    profiles = cargo["profile"]
    assert profiles["release"].get("debug") in (False, 0, "none"), profiles["release"]
    assert profiles["profiling"]["inherits"] == "release"
    assert profiles["profiling"]["debug"] not in (False, 0, "none")
    assert "--profile profiling" in (ROOT / "bench" / "profile.sh").read_text()


def test_readme_install_line():
    assert "cargo install --locked --path crates/kinesin" in (ROOT / "README.md").read_text()
