"""rclone's crypt formats, byte for byte (backend/crypt/cipher.go): the keys derived from the
passwords (keys), the names (names: standard EME, obfuscate, off; base32, base64 and
base32768 in encodings), and the file contents (contents: the header, 64 KiB secretbox
blocks, sizes and offsets). Pure formats: no I/O, no backend; the crypt backend
(backends/crypt) is built on them.
"""
