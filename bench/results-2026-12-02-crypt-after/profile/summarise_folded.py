import collections
import sys


def cat(stack):
    leaf = stack.split(";")[-1]
    s = stack
    if "Salsa20Cipher.encrypt" in leaf and "_cipher" not in s:
        return "decrypt: salsa20"
    if "Poly1305" in s and "open_into" in s:
        return "decrypt: poly1305"
    if "SecretBox._cipher" in s or "_hsalsa20" in s:
        return "decrypt: per-block setup"
    if "decrypt_block" in s:
        return "decrypt: other (alloc/free) " + leaf
    if "LocalReader.readinto" in leaf or "pread" in leaf.lower():
        return "ciphertext read (local) " + leaf
    if leaf.startswith("CryptReader.readinto"):
        return "copy: CryptReader pending -> caller " + leaf
    if leaf.startswith("ReadAhead.readinto"):
        return "copy: ReadAhead block -> FUSE buffer"
    if "Condition.__enter__" in leaf:
        return "wait: handle lock (Condition.__enter__)"
    if "Condition.wait" in leaf:
        return "wait: cond.wait " + (
            "(no block ready)"
            if "_next_block" in s
            else "(read-wait)"
            if "_wait_for" in s
            else "(room)"
            if "_fill" in s
            else ""
        )
    return "other: " + leaf


threads = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    stack, n = line.rstrip().rsplit(" ", 1)
    n = int(n)
    fr = stack.split(";")
    if "ReadAhead._fill" in stack:
        t = "readahead thread"
    elif "FUSE._wrapper" in stack:
        t = "FUSE workers"
    elif len(fr) < 8 and ("_worker (thread.py" in stack or "FUSE.__init__" in stack or "EpollSelector" in stack):
        t = "idle (pool/fuse main/http)"
    else:
        t = "other: " + " < ".join(x.split(" ")[0] for x in fr[3:6])
    threads[t][cat(stack)] += n
for t, c in sorted(threads.items(), key=lambda kv: -sum(kv[1].values())):
    tot = sum(c.values())
    print(f"{t}: {tot} samples")
    for k, v in c.most_common(12):
        print(f"   {v:6d} {100 * v / tot:5.1f}%  {k}")
