"""asyncio_echo.py: an asyncio TCP echo server on 127.0.0.1 (port 0: the kernel picks
one) and a periodic task that prints `count N` every 50 ms. Prints `port P` once
listening; each line a client sends comes back as `echo N LINE`, N being the count.
usage: python3 asyncio_echo.py"""
import asyncio

ticks = 0


async def echo(reader, writer):
    while line := await reader.readline():
        writer.write(b"echo %d " % ticks + line)
        await writer.drain()
    writer.close()


async def tick():
    global ticks
    while True:
        ticks += 1
        print("count", ticks, flush=True)
        await asyncio.sleep(0.05)


async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    print("port", server.sockets[0].getsockname()[1], flush=True)
    ticker = asyncio.get_running_loop().create_task(tick())
    async with server:
        await asyncio.gather(server.serve_forever(), ticker)


asyncio.run(main())
