#!/usr/bin/env python3
"""Runs the ```console blocks of a Markdown file against a fresh server and
compares what they print with what the file says they print.

A console block is a transcript: lines starting with `$ ` are commands
(a line ending in `\\` continues on the next), the lines up to the next
command are the output the page promises. Every console block of one file
runs in order against one fresh server on an empty data directory, started
with the defaults (the per-IP rate limit included), as a reader would run
them. Timestamps and request ids differ from run to run, so both sides are
compared with those masked (and a live stream's `: keep-alive` comments,
which come on a timer). `localhost:8080` in a command is the server.

  tests/docs/check_blocks.py BINARY FILE.md [FILE.md ...]
  tests/docs/check_blocks.py --write BINARY FILE.md   # refresh the outputs

Exit 1 on the first difference, with both texts.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
REQUEST_ID = re.compile(r"(?im)^(x-request-id: ).*$")
HOST_PORT = "localhost:8080"


def mask(text):
    text = TIME.sub("<time>", text)
    text = REQUEST_ID.sub(r"\1<id>", text)
    # A stream's keep-alive comments come on a timer, not on a change.
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return "\n".join(line for line in lines if line != ": keep-alive")


def blocks(markdown):
    """(start line, [(command, expected output)]) for each console block."""
    found = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```console":
            start = i
            i += 1
            steps = []
            while i < len(lines) and lines[i].strip() != "```":
                line = lines[i]
                if line.startswith("$ "):
                    command = line[2:]
                    while command.endswith("\\") and i + 1 < len(lines):
                        i += 1
                        command = command + "\n" + lines[i]
                    steps.append([command, []])
                elif steps:
                    steps[-1][1].append(line)
                i += 1
            found.append((start, [(c, "\n".join(o)) for c, o in steps]))
        i += 1
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, data_dir):
    port = free_port()
    env = dict(os.environ)
    env.update({
        "BOXOFFICE__SERVER__PORT": str(port),
        "BOXOFFICE__SNAPSHOT__DIR": data_dir,
        "BOXOFFICE__LOG__LEVEL": "warn",
    })
    # In a scratch directory with no config.toml: the built-in defaults,
    # which tests/config_keys.rs holds equal to the repository's config.toml.
    scratch = os.path.dirname(data_dir)
    log = open(os.path.join(scratch, "server.log"), "w")
    server = subprocess.Popen([os.path.abspath(binary)], cwd=scratch,
                              env=env, stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with {server.returncode} at start")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit("the server did not answer /health within 30 s")


def stop(server):
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def run(command, port):
    command = command.replace(HOST_PORT, f"localhost:{port}")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def check_file(binary, path, write):
    text = open(path).read()
    found = blocks(text)
    if not found:
        sys.exit(f"{path}: no console block")
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "data")
        os.mkdir(data)
        server, port = start(binary, data)
        outputs = []
        try:
            for start_line, steps in found:
                for command, expected in steps:
                    got = run(command, port)
                    outputs.append((command, got))
                    if not write and mask(got) != mask(expected):
                        print(f"{path}:{start_line + 1}: `{command}` printed\n{got}\n"
                              f"where the page says\n{expected}", file=sys.stderr)
                        sys.exit(1)
        finally:
            stop(server)
    if write:
        rewrite(path, text, outputs)
    steps = sum(len(s) for _, s in found)
    print(f"{path}: {steps} commands in {len(found)} blocks print what the page says")


def rewrite(path, text, outputs):
    """Puts each command's real output under it (for --write)."""
    out, i, lines, k = [], 0, text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        if line.strip() == "```console":
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                if lines[i].startswith("$ "):
                    out.append(lines[i])
                    while lines[i].endswith("\\"):
                        i += 1
                        out.append(lines[i])
                    command, got = outputs[k]
                    k += 1
                    out.extend(got.rstrip("\n").splitlines())
                i += 1
            out.append(lines[i])
        i += 1
    open(path, "w").write("\n".join(out) + "\n")


def main():
    args = sys.argv[1:]
    write = args[:1] == ["--write"]
    if write:
        args = args[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    binary = args[0]
    for path in args[1:]:
        check_file(binary, path, write)


if __name__ == "__main__":
    main()
