#!/usr/bin/env python3
# A TCP forwarder that can be cut: SIGUSR1 closes every forwarded connection and refuses new
# ones, SIGUSR2 lets them through again. Used by scripts/redis-partition.sh.
#   scripts/tcp-cut.py LISTEN_PORT TARGET_PORT
import asyncio, signal, sys
listen, target = int(sys.argv[1]), int(sys.argv[2])
cut = False
conns = set()
async def pipe(r, w):
    try:
        while True:
            d = await r.read(65536)
            if not d: break
            w.write(d); await w.drain()
    except Exception: pass
    finally:
        try: w.close()
        except Exception: pass
async def handle(cr, cw):
    if cut:
        cw.close(); return
    try:
        sr, sw = await asyncio.open_connection('127.0.0.1', target)
    except Exception:
        cw.close(); return
    conns.add((cw, sw))
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw))
    conns.discard((cw, sw))
def do_cut():
    global cut
    cut = True
    for cw, sw in list(conns):
        cw.transport.abort(); sw.transport.abort()
def do_restore():
    global cut
    cut = False
async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, do_cut)
    loop.add_signal_handler(signal.SIGUSR2, do_restore)
    server = await asyncio.start_server(handle, '127.0.0.1', listen)
    async with server: await server.serve_forever()
asyncio.run(main())
