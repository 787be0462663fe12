#!/usr/bin/env python3
"""Checks the CRC32c of every FPDU in a capture, independently of Wireshark.

Usage: fpdu_crc.py CAPTURE.pcap [--eta initiator|responder] [--siw-crc-error IN OWN]

Reassembles each direction of each TCP connection with `tshark -z follow,tcp,raw`,
skips the MPA Request or Reply at its start, walks the FPDUs (MPA without markers:
ULPDU_Length, ULPDU, pad to 4 octets, CRC32c) and recomputes each CRC. Prints one line
per direction ("stream S A->B (who): N FPDUs, M bad, K octets left over"), then
"bad eta=E siw=S" (FPDUs with a bad CRC by sender; the sender is known from which
side sent the MPA Request, given --eta), and last "total N FPDUs, M bad". Exit
status 0 iff no FPDU is bad.

Used when a CRC error is reported that Wireshark cannot confirm or refute (its
reassembly gives up on some zero-window and retransmission patterns): the octets on
the host side of the connection decide who sent a bad CRC.

--siw-crc-error IN OWN takes the two values of siw's kernel line "siw: crc error.
in: IN, own OWN": the CRC siw read from the trailer and the one it computed (both
printed as the little-endian load of the octets, as this script compares them). It
adds a line "siw-crc-error: explained ..." when OWN is the CRC eta sent in one of
its FPDUs (so the FPDU was good and siw computed the right CRC) and IN is what
Linux 6.1's siw_get_trailer() makes of that very trailer when it arrives in two or
more socket buffers: each part is copied to the start of the trailer buffer instead
of after the part before it, so later octets overwrite earlier ones (the octets no
part reaches keep an older trailer's values and match anything). Otherwise the line
says "siw-crc-error: not explained".
"""
import itertools
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


def fpdus(data):
    """The FPDUs of one direction: (ULPDU_Length, trailer octets, good) each, and the
    number of octets left over; and the MPA frame the direction starts with, if any."""
    off = 0
    start = None
    if data[:16] in (b"MPA ID Req Frame", b"MPA ID Rep Frame"):
        start = data[7:10].decode()
        off = 20 + int.from_bytes(data[18:20], "big")
    out = []
    while off + 2 <= len(data):
        ulen = int.from_bytes(data[off:off + 2], "big")
        total = 2 + ulen
        pad = (-total) % 4
        end = off + total + pad + 4
        if end > len(data):
            break
        crc = int.from_bytes(data[end - 4:end], "little")
        out.append((ulen, data[end - 4 - pad:end], crc == crc32c(data[off:end - 4])))
        off = end
    return out, len(data) - off, start


def compositions(n):
    """Every way to cut n octets into consecutive parts (lengths in order)."""
    for cuts in itertools.product((False, True), repeat=n - 1):
        parts, last = [], 0
        for i, cut in enumerate(cuts, 1):
            if cut:
                parts.append(i - last)
                last = i
        parts.append(n - last)
        yield parts


def split_trailer_reads(trailer):
    """What siw_get_trailer() reads as the CRC when the trailer (pad and CRC octets)
    arrives in two or more parts, each copied to the start of the buffer: one list
    of 4 octets (None where no part reached: an older value) per way to split it."""
    n, pad = len(trailer), len(trailer) - 4
    for parts in compositions(n):
        if len(parts) < 2:
            continue
        buf = [None] * n
        start = 0
        for length in parts:
            buf[:length] = trailer[start:start + length]
            start += length
        yield parts, buf[pad:]


def explain(sent, crc_in, crc_own):
    """Why siw read crc_in where it computed crc_own, from the FPDUs eta sent."""
    seen = [b for b in crc_in.to_bytes(4, "little")]
    for where, ulen, trailer, good in sent:
        if not good or int.from_bytes(trailer[-4:], "little") != crc_own:
            continue
        for parts, read in split_trailer_reads(trailer):
            known = [(r, s) for r, s in zip(read, seen) if r is not None]
            if len(known) >= 2 and all(r == s for r, s in known):
                return (f"explained: own {crc_own:08x} is the CRC eta sent in {where} "
                        f"(ULPDU_Length {ulen}, good); in {crc_in:08x} is that trailer "
                        f"read in parts of {'+'.join(map(str, parts))} octets, each "
                        f"copied to the start of the buffer (siw_get_trailer)")
        return (f"not explained: own {crc_own:08x} is the CRC eta sent in {where}, "
                f"but in {crc_in:08x} is no split reading of its trailer")
    return f"not explained: no FPDU eta sent carries the CRC {crc_own:08x}"


def main():
    args = sys.argv[1:]
    pcap, eta, siw_error = None, None, None
    while args:
        a = args.pop(0)
        if a == "--eta" and args:
            eta = args.pop(0)
        elif a == "--siw-crc-error" and len(args) >= 2:
            siw_error = (int(args.pop(0), 16), int(args.pop(0), 16))
        elif pcap is None and not a.startswith("--"):
            pcap = a
        else:
            print(__doc__, file=sys.stderr)
            return 2
    if pcap is None or eta not in (None, "initiator", "responder"):
        print(__doc__, file=sys.stderr)
        return 2
    eta_starts = {"initiator": "Req", "responder": "Rep"}.get(eta)
    total = total_bad = 0
    bad_by = {"eta": 0, "siw": 0, "?": 0}
    sent_by_eta = []
    for s in streams(pcap):
        for name, data in directions(pcap, s):
            if not data:
                continue
            found, left, start = fpdus(data)
            who = "?"
            if eta_starts and start:
                who = "eta" if start == eta_starts else "siw"
            bad = sum(1 for f in found if not f[2])
            total += len(found)
            total_bad += bad
            bad_by[who] += bad
            if who == "eta":
                sent_by_eta += [(f"FPDU {i} of stream {s}", *f) for i, f in enumerate(found)]
            print(f"stream {s} {name} ({who}): {len(found)} FPDUs, {bad} bad, "
                  f"{left} octets left over")
    print(f"bad eta={bad_by['eta']} siw={bad_by['siw']}"
          + (f" unknown={bad_by['?']}" if bad_by["?"] else ""))
    if siw_error:
        print("siw-crc-error: " + explain(sent_by_eta, *siw_error))
    print(f"total {total} FPDUs, {total_bad} bad")
    return 0 if total_bad == 0 and total > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
