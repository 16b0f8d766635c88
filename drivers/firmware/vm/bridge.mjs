// The reference firmware in the real MicroPython VM (the WebAssembly port, under Node),
// speaking the board protocol on standard input and output.
//
//   node drivers/firmware/vm/bridge.mjs PREFIX
//
// PREFIX is the npm prefix holding @micropython/micropython-webassembly-pyscript
// (npm install --prefix PREFIX @micropython/micropython-webassembly-pyscript@1.27.0).
// The firmware's modules are copied unchanged into the VM's /lib; only `machine` is a
// stub (vm/machine.py, on the simulated chips of simchips.py). Bytes read from stdin go
// to vmlink.feed; the replies it returns are written to stdout. Standard error carries
// one JSON line per event: {"event": "ready", ...memory} once the firmware is set up,
// {"event": "memory", ...} on SIGUSR2, {"event": "exit", ...} when stdin closes.
// Anything the VM prints goes to stderr too, never into the protocol stream.

import fs from "node:fs";
import path from "node:path";
import url from "node:url";

const FIRMWARE = ["protocol.py", "boardcore.py", "config.py", "chips.py", "hal_pico.py",
                  "main.py", "simchips.py"];
const STUBS = ["machine.py", "vmlink.py"];
// The GC heap a Raspberry Pi Pico leaves MicroPython, about 192 KiB (this port grows
// its heap on demand beyond it; vmlink.memory() reports what was used).
const HEAP_BYTES = 192 * 1024;

const here = path.dirname(url.fileURLToPath(import.meta.url));
const firmware = path.dirname(here);
const prefix = process.argv[2];
if (!prefix) {
    process.stderr.write("usage: node bridge.mjs NPM_PREFIX\n");
    process.exit(2);
}
const module = path.join(prefix, "node_modules", "@micropython", "micropython-webassembly-pyscript",
                         "micropython.mjs");
const { loadMicroPython } = await import(url.pathToFileURL(module).href);

const say = (text) => process.stderr.write(text + "\n");
const mp = await loadMicroPython({ heapsize: HEAP_BYTES, stdout: say, stderr: say });
mp.FS.mkdir("/lib");
for (const name of FIRMWARE) {
    mp.FS.writeFile("/lib/" + name, fs.readFileSync(path.join(firmware, name)));
}
for (const name of STUBS) {
    mp.FS.writeFile("/lib/" + name, fs.readFileSync(path.join(here, name)));
}

function fail(error) {
    say(JSON.stringify({ event: "crash", error: String(error && error.message || error) }));
    process.exit(1);
}

let vmlink;
try {
    vmlink = mp.pyimport("vmlink");
} catch (error) {
    fail(error);
}
const report = (event) => say(JSON.stringify(Object.assign({ event }, JSON.parse(vmlink.memory()))));

process.on("SIGUSR2", () => report("memory"));    // before "ready": the host may ask at once
report("ready");
process.stdin.on("data", (chunk) => {
    let hex;
    try {
        hex = vmlink.feed(new Uint8Array(chunk));
    } catch (error) {
        fail(error);       // an exception the firmware did not catch: the board has crashed
    }
    if (hex.length) {
        process.stdout.write(Buffer.from(hex, "hex"));
    }
});
process.stdin.on("end", () => {
    report("exit");
    process.exit(0);
});
