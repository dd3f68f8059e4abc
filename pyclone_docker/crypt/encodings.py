"""The three encodings of encrypted file names in rclone's crypt (filename_encoding), with
Go's decoding rules and error texts.

* base32: RFC 4648 base32hex, lower case, without the `=` padding (rclone's
  caseInsensitiveBase32Encoding). Decoding upper-cases first, so upper case is accepted; a
  trailing `=` is refused ("bad base32 filename encoding").
* base64: base64url without padding (Go's base64.RawURLEncoding). Case-sensitive.
* base32768: github.com/Max-Sum/base32768's SafeEncoding: 15 bits per BMP character, the
  last 1 to 7 bits in one of 4 "trailing" characters. For remotes that count UTF-16 units.

Each is an object with `name`, `encode(bytes) -> str` and `decode(str) -> bytes`; decode
raises ValueError with Go's message (e.g. "illegal base32 data at input byte 5"). As in Go,
CR and LF in the input are skipped, and the unused low bits of the last character are not
checked. The common, valid case takes a fast path; Go's decoder is followed step by step only
to find the position of an error.
"""

from __future__ import annotations

import base64
import re
from typing import Protocol


class Encoding(Protocol):
    name: str

    def encode(self, data: bytes) -> str: ...

    def decode(self, text: str) -> bytes: ...


def _raw(text: str) -> bytes:
    """The bytes Go sees for a name: UTF-8, with surrogate escapes back as the raw bytes."""
    return text.encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------------------------
# base32

_B32_ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUV"
_B32_DECODE = bytes(_B32_ALPHABET.index(c) if c in _B32_ALPHABET else 0xFF for c in range(256))
_B32_VALID = re.compile(r"[0-9a-vA-V]*")
_B32_BYTES = {8: 5, 7: 4, 5: 3, 4: 2, 2: 1}
_PAD = 0x3D  # "="


def _go_upper(text: str) -> str:
    """Go's strings.ToUpper (simple case mapping) for what can become base32: ASCII, and the
    two letters whose upper case is ASCII (dotless i, long s); anything else stays as it is
    and fails to decode anyway."""
    if text.isascii():
        return text.upper()
    return "".join(c.upper() if c.isascii() else {"\u0131": "I", "\u017f": "S"}.get(c, c) for c in text)


def _go_base32_decode(src: bytes) -> bytes:
    """Go's encoding/base32 HexEncoding decode (with `=` padding), newlines already removed."""
    olen = len(src)
    out = bytearray()
    i = 0
    end = False
    while i < olen and not end:
        dbuf = [0] * 8
        dlen = 8
        j = 0
        while j < 8:
            if i == olen:
                raise _b32_corrupt(i - j)  # the end, and padding is missing
            c = src[i]
            i += 1
            remaining = olen - i
            if c == _PAD and j >= 2 and remaining < 8:
                if remaining + j < 7:
                    raise _b32_corrupt(olen)  # not enough padding
                for k in range(7 - j):
                    if remaining > k and src[i + k] != _PAD:
                        raise _b32_corrupt(i + k - 1)  # incorrect padding (Go's offset)
                dlen, end = j, True
                if dlen in (1, 3, 6):
                    raise _b32_corrupt(i - 1)
                break
            v = _B32_DECODE[c]
            if v == 0xFF:
                raise _b32_corrupt(i - 1)
            dbuf[j] = v
            j += 1
        val = 0
        for v in dbuf:
            val = (val << 5) | v
        out += val.to_bytes(5, "big")[:_B32_BYTES[dlen]]
    return bytes(out)


def _b32_corrupt(offset: int) -> ValueError:
    return ValueError(f"illegal base32 data at input byte {offset}")


class _Base32:
    name = "base32"

    def encode(self, data: bytes) -> str:
        return base64.b32hexencode(data).rstrip(b"=").decode("ascii").lower()

    def decode(self, text: str) -> bytes:
        if text.endswith("="):
            raise ValueError("bad base32 filename encoding")
        if len(text) % 8 not in (1, 3, 6) and _B32_VALID.fullmatch(text):
            return base64.b32hexdecode(text.upper() + "=" * (-len(text) % 8))
        # Go pads to the byte length of the name as given, upper-cases, then drops CR and LF
        padded = _raw(_go_upper(text)) + b"=" * (-len(_raw(text)) % 8)
        return _go_base32_decode(padded.replace(b"\r", b"").replace(b"\n", b""))


# ---------------------------------------------------------------------------------------------
# base64 (RawURLEncoding)

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_DECODE = bytes(_B64_ALPHABET.index(c) if c in _B64_ALPHABET else 0xFF for c in range(256))
_B64_VALID = re.compile(r"[A-Za-z0-9_-]*")


def _b64_corrupt(offset: int) -> ValueError:
    return ValueError(f"illegal base64 data at input byte {offset}")


def _go_base64_decode(src: bytes) -> bytes:
    """Go's base64.RawURLEncoding.DecodeString: quanta of 4, CR/LF skipped, no padding."""
    out = bytearray()
    si = 0
    n = len(src)
    while si < n:
        dbuf = [0] * 4
        dlen = 4
        j = 0
        while j < 4:
            if si == n:
                if j == 1:
                    raise _b64_corrupt(si - j)
                dlen = j
                break
            c = src[si]
            si += 1
            v = _B64_DECODE[c]
            if v != 0xFF:
                dbuf[j] = v
                j += 1
                continue
            if c in (0x0A, 0x0D):
                continue
            raise _b64_corrupt(si - 1)
        if dlen == 0:
            break
        val = (dbuf[0] << 18) | (dbuf[1] << 12) | (dbuf[2] << 6) | dbuf[3]
        out += val.to_bytes(3, "big")[:dlen - 1]
    return bytes(out)


class _Base64:
    name = "base64"

    def encode(self, data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    def decode(self, text: str) -> bytes:
        if len(text) % 4 != 1 and _B64_VALID.fullmatch(text):
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return _go_base64_decode(_raw(text))


# ---------------------------------------------------------------------------------------------
# base32768 (Max-Sum SafeEncoding)

# the alphabet is data from github.com/Max-Sum/base32768 (safeAlphabet): 1028 BMP code
# points, each a multiple of 32; sorted, the lowest 4 code 7 bits, the other 1024 code 15
_SAFE_ALPHABET = (
    "ƀɀɠʀҠԀڀڠݠހ߀ကႠᄀᄠᅀᆀᇠሀሠበዠጠᎠᏀᐠᑀᑠᒀᒠᓀᓠᔀᔠᕀᕠᖀᖠᗀᗠᘀᘠᙀᚠᛀកᠠᡀᣀᦀ᧠ᨠᯀᰀᴀ⇠⋀⍀⍠⎀⎠⏀␀─┠╀╠▀■◀◠☀☠♀♠⚀⚠⛀⛠✀✠❀➀➠⠀⠠⡀⡠⢀⢠⣀⣠⤀⤠⥀⥠⦠⨠⩀⪀"
    "⪠⫠⬀⬠⭀ⰀⲀⲠⳀⴀⵀ⺠⻀㇀㐀㐠㑀㑠㒀㒠㓀㓠㔀㔠㕀㕠㖀㖠㗀㗠㘀㘠㙀㙠㚀㚠㛀㛠㜀㜠㝀㝠㞀㞠㟀㟠㠀㠠㡀㡠㢀㢠㣀㣠㤀㤠㥀㥠㦀㦠㧀㧠㨀㨠㩀㩠㪀㪠㫀㫠㬀㬠㭀㭠㮀㮠㯀㯠㰀㰠㱀㱠㲀㲠㳀㳠㴀㴠㵀㵠㶀㶠㷀㷠㸀㸠㹀㹠㺀㺠"
    "㻀㻠㼀㼠㽀㽠㾀㾠㿀㿠䀀䀠䁀䁠䂀䂠䃀䃠䄀䄠䅀䅠䆀䆠䇀䇠䈀䈠䉀䉠䊀䊠䋀䋠䌀䌠䍀䍠䎀䎠䏀䏠䐀䐠䑀䑠䒀䒠䓀䓠䔀䔠䕀䕠䖀䖠䗀䗠䘀䘠䙀䙠䚀䚠䛀䛠䜀䜠䝀䝠䞀䞠䟀䟠䠀䠠䡀䡠䢀䢠䣀䣠䤀䤠䥀䥠䦀䦠䧀䧠䨀䨠䩀䩠䪀䪠䫀䫠䬀䬠"
    "䭀䭠䮀䮠䯀䯠䰀䰠䱀䱠䲀䲠䳀䳠䴀䴠䵀䵠䶀䷀䷠一丠乀习亀亠什仠伀传佀你侀侠俀俠倀倠偀偠傀傠僀僠儀儠兀兠冀冠净几刀删剀剠劀加勀勠匀匠區占厀厠叀叠吀吠呀呠咀咠哀哠唀唠啀啠喀喠嗀嗠嘀嘠噀噠嚀嚠囀因圀圠址坠垀垠埀"
    "埠堀堠塀塠墀墠壀壠夀夠奀奠妀妠姀姠娀娠婀婠媀媠嫀嫠嬀嬠孀孠宀宠寀寠尀尠局屠岀岠峀峠崀崠嵀嵠嶀嶠巀巠帀帠幀幠庀庠廀廠开张彀彠往徠忀忠怀怠恀恠悀悠惀惠愀愠慀慠憀憠懀懠戀戠所扠技抠拀拠挀挠捀捠掀掠揀揠搀搠摀"
    "摠撀撠擀擠攀攠敀敠斀斠旀无昀映晀晠暀暠曀曠最朠杀杠枀枠柀柠栀栠桀桠梀梠检棠椀椠楀楠榀榠槀槠樀樠橀橠檀檠櫀櫠欀欠歀歠殀殠毀毠氀氠汀池沀沠泀泠洀洠浀浠涀涠淀淠渀渠湀湠満溠滀滠漀漠潀潠澀澠激濠瀀瀠灀灠炀炠烀"
    "烠焀焠煀煠熀熠燀燠爀爠牀牠犀犠狀狠猀猠獀獠玀玠珀珠琀琠瑀瑠璀璠瓀瓠甀甠畀畠疀疠痀痠瘀瘠癀癠皀皠盀盠眀眠着睠瞀瞠矀矠砀砠础硠碀碠磀磠礀礠祀祠禀禠秀秠稀稠穀穠窀窠竀章笀笠筀筠简箠節篠簀簠籀籠粀粠糀糠紀素絀"
    "絠綀綠緀締縀縠繀繠纀纠绀绠缀缠罀罠羀羠翀翠耀耠聀聠肀肠胀胠脀脠腀腠膀膠臀臠舀舠艀艠芀芠苀苠茀茠荀荠莀莠菀菠萀萠葀葠蒀蒠蓀蓠蔀蔠蕀蕠薀薠藀藠蘀蘠虀虠蚀蚠蛀蛠蜀蜠蝀蝠螀螠蟀蟠蠀蠠血衠袀袠裀裠褀褠襀襠覀覠觀"
    "觠言訠詀詠誀誠諀諠謀謠譀譠讀讠诀诠谀谠豀豠貀負賀賠贀贠赀赠趀趠跀跠踀踠蹀蹠躀躠軀軠輀輠轀轠辀辠迀迠退造遀遠邀邠郀郠鄀鄠酀酠醀醠釀釠鈀鈠鉀鉠銀銠鋀鋠錀錠鍀鍠鎀鎠鏀鏠鐀鐠鑀鑠钀钠铀铠销锠镀镠門閠闀闠阀阠陀"
    "陠隀隠雀雠需霠靀靠鞀鞠韀韠頀頠顀顠颀颠飀飠餀餠饀饠馀馠駀駠騀騠驀驠骀骠髀髠鬀鬠魀魠鮀鮠鯀鯠鰀鰠鱀鱠鲀鲠鳀鳠鴀鴠鵀鵠鶀鶠鷀鷠鸀鸠鹀鹠麀麠黀黠鼀鼠齀齠龀龠ꀀꀠꁀꁠꂀꂠꃀꃠꄀꄠꅀꅠꆀꆠꇀꇠꈀꈠꉀꉠꊀꊠꋀꋠꌀ"
    "ꌠꍀꍠꎀꎠꏀꏠꐀꐠꑀꑠ꒠ꔀꔠꕀꕠꖀꖠꗀꗠꙀꚠꛀ꜀꜠ꝀꞀꡀ"
)

_SORTED = sorted(ord(c) for c in _SAFE_ALPHABET)
assert len(_SORTED) == 1028 and all(c % 32 == 0 for c in _SORTED)
_TABLE_B = tuple(_SORTED[:4])   # the trailing characters: 2 + 5 bits
_TABLE_A = tuple(_SORTED[4:])   # 10 + 5 bits
_SPLITTER = _TABLE_A[0]         # below it: a trailing character
_DECODE_MAP: dict[int, int] = {}
for _i, _c in enumerate(_TABLE_A):
    _DECODE_MAP[_c >> 5] = _i << 5
for _i, _c in enumerate(_TABLE_B):
    _DECODE_MAP[_c >> 5] = _i << 5
del _i, _c


def _b32768_corrupt(unit: int) -> ValueError:
    # Go counts the position in bytes of UTF-16: twice the index of the bad unit
    return ValueError(f"illegal base32768 data at input byte {unit * 2}")


def _utf16_units(text: str) -> list[int]:
    """Go's utf16.Encode([]rune(s)): a lone surrogate (an invalid byte in Go's string) is
    U+FFFD; a code point above the BMP gives two units."""
    units = []
    for ch in text:
        c = ord(ch)
        if 0xD800 <= c <= 0xDFFF:
            units.append(0xFFFD)
        elif c > 0xFFFF:
            c -= 0x10000
            units += (0xD800 | (c >> 10), 0xDC00 | (c & 0x3FF))
        else:
            units.append(c)
    return units


class _Base32768:
    name = "base32768"

    def encode(self, data: bytes) -> str:
        nbits = len(data) * 8
        value = int.from_bytes(data, "big")
        full, rem = divmod(nbits, 15)
        tail = ""
        if rem:
            last = value & ((1 << rem) - 1)
            value >>= rem
            if rem <= 7:  # pad with 1-bits to 7, a trailing character
                last = (last << (7 - rem)) | ((1 << (7 - rem)) - 1)
                tail = chr(_TABLE_B[last >> 5] | (last & 31))
            else:  # pad with 1-bits to 15
                last = (last << (15 - rem)) | ((1 << (15 - rem)) - 1)
                tail = chr(_TABLE_A[last >> 5] | (last & 31))
        table = _TABLE_A
        chars = []
        for _ in range(full):
            chunk = value & 0x7FFF
            value >>= 15
            chars.append(chr(table[chunk >> 5] | (chunk & 31)))
        chars.reverse()
        return "".join(chars) + tail

    def decode(self, text: str) -> bytes:
        if "\r" in text or "\n" in text:
            text = text.replace("\r", "").replace("\n", "")
        units = _utf16_units(text)
        out = bytearray()
        left = leftn = 0
        decode_map = _DECODE_MAP
        for index, unit in enumerate(units):
            d = decode_map.get(unit >> 5)
            if d is None:
                raise _b32768_corrupt(index)
            d |= unit & 31
            if unit < _SPLITTER:  # the trailing character: the data ends here
                if leftn:
                    out.append(((left << (8 - leftn)) | (d >> (leftn - 1))) & 0xFF)
                return bytes(out)
            if leftn:
                out.append(((left << (8 - leftn)) | (d >> (7 + leftn))) & 0xFF)
                out.append((d >> (leftn - 1)) & 0xFF)
                left = d & ((1 << (leftn - 1)) - 1)
                leftn -= 1
            else:
                out.append(d >> 7)
                left = d & 0x7F
                leftn = 7
        return bytes(out)


BASE32: Encoding = _Base32()
BASE64: Encoding = _Base64()
BASE32768: Encoding = _Base32768()
ENCODINGS: dict[str, Encoding] = {e.name: e for e in (BASE32, BASE64, BASE32768)}


def lookup(name: str) -> Encoding:
    """The encoding for a filename_encoding value (case-insensitive), as rclone's NewNameEncoding."""
    key = name.lower()
    try:
        return ENCODINGS[key]
    except KeyError:
        raise ValueError(f"unknown file name encoding mode {go_quote(key)}") from None


def go_quote(text: str) -> str:
    """Go's %q for the texts of error messages (printable text; escapes for the rest)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\x{ord(ch):02x}"))
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # an invalid byte
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'
