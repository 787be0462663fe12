#!/usr/bin/env python3
"""Checks the CRC32c of every FPDU in a capture, independently of Wireshark.

Usage: fpdu_crc.py CAPTURE.pcap

Reassembles each direction of each TCP connection with `tshark -z follow,tcp,raw`,
skips the MPA Request or Reply at its start, walks the FPDUs (MPA without markers:
ULPDU_Length, ULPDU, pad to 4 octets, CRC32c) and recomputes each CRC. Prints one line
per direction ("stream S A->B: N FPDUs, M bad, K octets left over") and a last line
"total N FPDUs, M bad"; exit status 0 iff no FPDU is bad. Used when siw reports a CRC
error that Wireshark cannot confirm or refute (its reassembly gives up on some
zero-window and retransmission patterns): the octets on the host side of the
connection decide whether eta sent a bad CRC.
"""
import subprocess
import sys

POLY = 0x82F63B78
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for x in data:
        c = TABLE[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def streams(pcap):
    out = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "tcp.stream"],
                         capture_output=True, text=True, check=True).stdout
    return sorted({int(s) for s in out.split() if s.isdigit()})


def directions(pcap, stream):
    out = subprocess.run(["tshark", "-r", pcap, "-q", "-z", f"follow,tcp,raw,{stream}"],
                         capture_output=True, text=True, check=True).stdout
    a = b = b""
    names = []
    for line in out.splitlines():
        if line.startswith("Node "):
            names.append(line.split(": ", 1)[1])
            continue
        if not line.strip() or line.startswith("=") or line.startswith(("Follow", "Filter")):
            continue
        if line.startswith("\t"):
            b += bytes.fromhex(line.strip())
        else:
            a += bytes.fromhex(line.strip())
    n0, n1 = (names + ["?", "?"])[:2]
    return [(f"{n0}->{n1}", a), (f"{n1}->{n0}", b)]


def check(data):
    off = 0
    if data[:16] in (b"MPA ID Req Frame", b"MPA ID Rep Frame"):
        off = 20 + int.from_bytes(data[18:20], "big")
    fpdus = bad = 0
    while off + 2 <= len(data):
        total = 2 + int.from_bytes(data[off:off + 2], "big")
        end = off + total + (-total) % 4 + 4
        if end > len(data):
            break
        fpdus += 1
        if int.from_bytes(data[end - 4:end], "little") != crc32c(data[off:end - 4]):
            bad += 1
        off = end
    return fpdus, bad, len(data) - off


def main():
    pcap = sys.argv[1]
    total = total_bad = 0
    for s in streams(pcap):
        for name, data in directions(pcap, s):
            if not data:
                continue
            fpdus, bad, left = check(data)
            total += fpdus
            total_bad += bad
            print(f"stream {s} {name}: {fpdus} FPDUs, {bad} bad, {left} octets left over")
    print(f"total {total} FPDUs, {total_bad} bad")
    return 0 if total_bad == 0 and total > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
