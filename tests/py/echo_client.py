"""asyncio echo client: echo_client.py PORT CONNECTIONS MESSAGES.

Opens CONNECTIONS concurrent connections to 127.0.0.1:PORT; each sends
MESSAGES messages of 1..8192 octets (a pattern that depends on connection and
message) and checks the echo octet for octet. Prints "ok N messages B octets".
"""
import asyncio
import sys


async def client(port, cid, messages):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    octets = 0
    for m in range(messages):
        n = 1 + (m * 997 + cid * 131) % 8192
        msg = bytes((i * 7 + m + cid) & 0xFF for i in range(n))
        writer.write(msg)
        await writer.drain()
        echo = await asyncio.wait_for(reader.readexactly(n), timeout=20)
        if echo != msg:
            raise SystemExit(f"connection {cid} message {m}: echo differs")
        octets += n
    writer.close()
    await writer.wait_closed()
    return octets


async def main():
    port, conns, messages = (int(a) for a in sys.argv[1:4])
    totals = await asyncio.gather(*(client(port, c, messages) for c in range(conns)))
    print(f"ok {conns * messages} messages {sum(totals)} octets", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
