# ruff: noqa: E501  (KNOWN restates rclone's generated cases verbatim, one case a line)
"""pyclone_docker.encoder against rclone's lib/encoder: known answers restated from rclone's
encoder_cases_test.go and encoder_test.go, round trips over many names, and the reference rclone
1.75.2 (tests/rclone_ref.py) writing, listing and parsing through its local backend."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from pyclone_docker.encoder import BASE, DEFAULTS, FLAGS, QUOTE, STANDARD, Encoder, parse_encoding

SFTP = "Slash,Del,Ctl,Dot"
FTP = "Slash,Del,Ctl,RightSpace,Dot"
ALL = ",".join(k for k in FLAGS if k != "Raw")
EDGES = "LeftSpace,LeftPeriod,LeftTilde,LeftCrLfHtVt,RightSpace,RightPeriod,RightCrLfHtVt,InvalidUtf8,Dot"


def raw(b: bytes) -> str:
    """A name as os/FUSE hands it over: undecodable bytes as surrogates."""
    return b.decode("utf-8", "surrogateescape")


# (mask in rclone's syntax, name, encoded); "# testCasesX n" is the case in rclone's encoder_cases_test.go
KNOWN: list[tuple[str, str, str]] = [
    ('None', "＊2π%ｊ８｜aｗ␄k%\x15β\x00σ\\τ７␟'R\x0c␀τ；β7７␇", "＊2π%ｊ８｜aｗ␄k%\x15β␀σ\\τ７␟'R\x0c‛␀τ；β7７␇"),  # testCasesSingle 0
    ('Slash', '␄␅VＪｇ：Ｋ|\x10+\x10／φ｀/π\n\x08ρRα\x03ζ？＜VLν␗ｑ', '␄␅VＪｇ：Ｋ|\x10+\x10‛／φ｀／π\n\x08ρRα\x03ζ？＜VLν␗ｑ'),  # testCasesSingle 1
    ('SingleQuote', "γ␅＇Ｐｎ\x0cχ\nε␍[υ\r␉］ζM2ω␘＇$\nＡＮ␄^'\\\x7f", 'γ␅‛＇Ｐｎ\x0cχ\nε␍[υ\r␉］ζM2ω␘‛＇$\nＡＮ␄^＇\\\x7f'),  # testCasesSingle 2
    ('BackQuote', "\x17＼θWfｃＲ␟(［｀\x0bＶ６τη\x1d［'mυ>：#｜βw｛`ρ", "\x17＼θWfｃＲ␟(［‛｀\x0bＶ６τη\x1d［'mυ>：#｜βw｛｀ρ"),  # testCasesSingle 3
    ('LtGt', '４＞>ｏ\n\x1bＰι,␅Pυ\x0e＜\n＂！９tπ＞<␎\x08(ης：oε', '４‛＞＞ｏ\n\x1bＰι,␅Pυ\x0e‛＜\n＂！９tπ‛＞＜␎\x08(ης：oε'),  # testCasesSingle 4
    ('SquareBracket', '␛␡\x0cενm\x1bρ[M+τ\x19\\\x04νw＾］＃␚ｑ．ψＩ0Ｘ＃［]', '␛␡\x0cενm\x1bρ［M+τ\x19\\\x04νw＾‛］＃␚ｑ．ψＩ0Ｘ＃‛［］'),  # testCasesSingle 5
    ('Semicolon', "Rφ#'\x06\x13ςY｜ψ＞ｌ%；ｙｓｏ$;;ς␆ξ␗␚\x1b[＼ι＼", "Rφ#'\x06\x13ςY｜ψ＞ｌ%‛；ｙｓｏ$；；ς␆ξ␗␚\x1b[＼ι＼"),  # testCasesSingle 6
    ('Exclamation', '\x17!;Ｘτ\x02？^εE！π\x01＆＃␇␐＆ψ＊ι～␀:~/"θ␎R', '\x17！;Ｘτ\x02？^εE‛！π\x01＆＃␇␐＆ψ＊ι～‛␀:~/"θ␎R'),  # testCasesSingle 7
    ('Dollar', 'ωQ＝λ␕γ␗＄＂ε／#Ｒ$!$␚\x1e:Ｙ\x1e８\x7f$π␇ν\x19␁=', 'ωQ＝λ␕γ␗‛＄＂ε／#Ｒ＄!＄␚\x1e:Ｙ\x1e８\x7f＄π␇ν\x19␁='),  # testCasesSingle 8
    ('DoubleQuote', 'χ␙ρ\x13\x15Ｅ\t\x0fＣ␈\x15３sος␙７␔νk!π＂␆o␎"MＷ\x05', 'χ␙ρ\x13\x15Ｅ\t\x0fＣ␈\x15３sος␙７␔νk!π‛＂␆o␎＂MＷ\x05'),  # testCasesSingle 9
    ('Colon', '\x1f\x18%～:／\x18Ｑ＋δω␆R｜：OζＩs␇\x7f／\x17?␊μτC；φ', '\x1f\x18%～：／\x18Ｑ＋δω␆R｜‛：OζＩs␇\x7f／\x17?␊μτC；φ'),  # testCasesSingle 10
    ('Question', 'Q␝Ｊａｌ？Vz\x0b␏␁\x16\x10?␛χκ?[␑ι\n＜␝ν\x15#βλＵ', 'Q␝Ｊａｌ‛？Vz\x0b␏␁\x16\x10？␛χκ？[␑ι\n＜␝ν\x15#βλＵ'),  # testCasesSingle 11
    ('Asterisk', 'W=\x05ｘξβ＄\x1bmａε␡*␝!＊␡␊f\\"␑Yｈｚτ\x1fδτｋ', 'W=\x05ｘξβ＄\x1bmａε␡＊␝!‛＊␡␊f\\"␑Yｈｚτ\x1fδτｋ'),  # testCasesSingle 12
    ('Pipe', '#\x18␍␊Ｘ\x18␍ｋp＊λ\x0c:\x07θｔg]｜ｋρ;|υο␎Oξ␍｀', '#\x18␍␊Ｘ\x18␍ｋp＊λ\x0c:\x07θｔg]‛｜ｋρ;｜υο␎Oξ␍｀'),  # testCasesSingle 13
    ('Hash', '*［␄％μ$φ#$＄ｉδ%|␝ο＼χ\x1fxI）\x11yＧ＃！ςt９', '*［␄％μ$φ＃$＄ｉδ%|␝ο＼χ\x1fxI）\x11yＧ‛＃！ςt９'),  # testCasesSingle 14
    ('Percent', 'DδＭ｀ξ␍\x06ρ␓ζ：＄Ｔ\x04␒φ!\x01Ｏ$%d%/γＷＪ\r％:', 'DδＭ｀ξ␍\x06ρ␓ζ：＄Ｔ\x04␒φ!\x01Ｏ$％d％/γＷＪ\r‛％:'),  # testCasesSingle 15
    ('BackSlash', '\x1aｌ^.\\ｘP␇ββσ\x10*\x01␓＼α＞\x16＊":\'／␄λ／ｅχＶ', '\x1aｌ^.＼ｘP␇ββσ\x10*\x01␓‛＼α＞\x16＊":\'／␄λ／ｅχＶ'),  # testCasesSingle 16
    ('CrLf', 'Fｇ！［␂π|\x0eY\nμ$＊0␊ν\x01VχI３␍＞\x00␐？δ\r␊ω', 'Fｇ！［␂π|\x0eY␊μ$＊0‛␊ν\x01VχI３‛␍＞␀␐？δ␍‛␊ω'),  # testCasesSingle 17
    ('Del', 'ο␡：πς␓\x14ｏ␏*P:␙\x18d␊λδZ<;＆／\x7f\x00６［\x03Ｖδ', 'ο‛␡：πς␓\x14ｏ␏*P:␙\x18d␊λδZ<;＆／␡␀６［\x03Ｖδ'),  # testCasesSingle 18
    ('Ctl', '␊\n␅␚ρ␉␄␈\x1f\\\x1bζ\x19␏ｔ␘\x07φ\x0c\x11\x05␃－␒␁␙␟␔ξ#␄ＸN␜\x08\r\x14\x04␋\x10＜␑2!\x18\x1c\t␆\x06␞{␍␐␎5␝\x12ｃ\x1a\x03␗\x0e␛\x08\x15\x1eX␛␐␌\x01\x1d\x17\x02\x1d8？\x13␖␂\x18\x0b␕＾␙\x0fα␕␇;μ␓\x16', '‛␊␊‛␅‛␚ρ‛␉‛␄‛␈␟\\␛ζ␙‛␏ｔ‛␘␇φ␌␑␅‛␃－‛␒‛␁‛␙‛␟‛␔ξ#‛␄ＸN‛␜␈␍␔␄‛␋␐＜‛␑2!␘␜␉‛␆␆‛␞{‛␍‛␐‛␎5‛␝␒ｃ␚␃‛␗␎‛␛␈␕␞X‛␛‛␐‛␌␁␝␗␂␝8？␓‛␖‛␂␘␋‛␕＾‛␙␏α‛␕‛␇;μ‛␓␖'),  # testCasesSingle 19
    ('LeftSpace', ' ', '␠'),  # testCasesSingleEdge 0
    ('LeftSpace', ' ␠α␃Ｊ\x04ψ␘Ｐζ ＇\x1a6θz｜$`?N：␜h>μ｀＊５μ', '␠␠α␃Ｊ\x04ψ␘Ｐζ ＇\x1a6θz｜$`?N：␜h>μ｀＊５μ'),  # testCasesSingleEdge 2
    ('LeftSpace', '␠␠α␃Ｊ\x04ψ␘Ｐζ ＇\x1a6θz｜$`?N：␜h>μ｀＊５μ', '‛␠␠α␃Ｊ\x04ψ␘Ｐζ ＇\x1a6θz｜$`?N：␜h>μ｀＊５μ'),  # testCasesSingleEdge 3
    ('LeftSpace', ' Qα␃Ｊ\x04ψ␘Ｐζ ＇\x1a6θz｜$`?N：␜h>μ｀＊␠μ', '␠Qα␃Ｊ\x04ψ␘Ｐζ ＇\x1a6θz｜$`?N：␜h>μ｀＊␠μ'),  # testCasesSingleEdge 4
    ('Ctl,LeftSpace', '␉B␑ｓ5}φｕｂ␉ \x0f\rξ@\x17βhι/＞\x18＼␈＜Ｍυ{ｉ]', '‛␉B‛␑ｓ5}φｕｂ‛␉ ␏␍ξ@␗βhι/＞␘＼‛␈＜Ｍυ{ｉ]'),  # testCasesSingleEdge 362
    ('Ctl,LeftSpace', ' ␠␑ｓ5}φｕｂ␉ \x0f\rξ@\x17βhι/＞\x18＼␈＜Ｍυ{ｉ]', '␠␠‛␑ｓ5}φｕｂ‛␉ ␏␍ξ@␗βhι/＞␘＼‛␈＜Ｍυ{ｉ]'),  # testCasesSingleEdge 363
    ('LeftPeriod', '.．α␕\\\x10νσ\t＼.E␊ｘｒρ␔ξ０30?6␑ｂ\x0e␎ｂξ3', '．．α␕\\\x10νσ\t＼.E␊ｘｒρ␔ξ０30?6␑ｂ\x0e␎ｂξ3'),  # testCasesSingleEdge 383
    ('LeftPeriod', '．．α␕\\\x10νσ\t＼.E␊ｘｒρ␔ξ０30?6␑ｂ\x0e␎ｂξ3', '‛．．α␕\\\x10νσ\t＼.E␊ｘｒρ␔ξ０30?6␑ｂ\x0e␎ｂξ3'),  # testCasesSingleEdge 384
    ('LeftPeriod', '.dα␕\\\x10νσ\t＼.E␊ｘｒρ␔ξ０30?6␑ｂ\x0e␎ｂ．3', '．dα␕\\\x10νσ\t＼.E␊ｘｒρ␔ξ０30?6␑ｂ\x0e␎ｂ．3'),  # testCasesSingleEdge 385
    ('LeftTilde', '~～｜␑ｋ␐Ｚ＜ｐ＇~ζ{\x13|%Pψ\x15\x04］πξk\x18S｛ε＇)', '～～｜␑ｋ␐Ｚ＜ｐ＇~ζ{\x13|%Pψ\x15\x04］πξk\x18S｛ε＇)'),  # testCasesSingleEdge 764
    ('LeftTilde', '～～｜␑ｋ␐Ｚ＜ｐ＇~ζ{\x13|%Pψ\x15\x04］πξk\x18S｛ε＇)', '‛～～｜␑ｋ␐Ｚ＜ｐ＇~ζ{\x13|%Pψ\x15\x04］πξk\x18S｛ε＇)'),  # testCasesSingleEdge 765
    ('LeftTilde', '~～｜␑ｋ␐Ｚ＜ｐ＇~ζ{\x13|%Pψ\x15\x04］πξk\x18S｛ε～)', '～～｜␑ｋ␐Ｚ＜ｐ＇~ζ{\x13|%Pψ\x15\x04］πξk\x18S｛ε～)'),  # testCasesSingleEdge 766
    ('Slash,LeftTilde', '%ｓ␀\x0eψv＆ω＋#~␍ι＊Pe␊␚\x19\x1e＃Uρ＼υνＥ\x0e？?', '%ｓ‛␀\x0eψv＆ω＋#~␍ι＊Pe␊␚\x19\x1e＃Uρ＼υνＥ\x0e？?'),  # testCasesSingleEdge 782
    ('Slash,LeftTilde', '~～␀\x0eψv＆ω＋#~␍ι＊Pe␊␚\x19\x1e＃Uρ＼υνＥ\x0e？?', '～～‛␀\x0eψv＆ω＋#~␍ι＊Pe␊␚\x19\x1e＃Uρ＼υνＥ\x0e？?'),  # testCasesSingleEdge 783
    ('LeftCrLfHtVt', "\t␉␒>｜\x1fκUＲ\x15\t＞'λ\x1b：ＡｌRＩωοRC＇φ/Ａη␅", "␉␉␒>｜\x1fκUＲ\x15\t＞'λ\x1b：ＡｌRＩωοRC＇φ/Ａη␅"),  # testCasesSingleEdge 1148
    ('LeftCrLfHtVt', "␉␉␒>｜\x1fκUＲ\x15\t＞'λ\x1b：ＡｌRＩωοRC＇φ/Ａη␅", "‛␉␉␒>｜\x1fκUＲ\x15\t＞'λ\x1b：ＡｌRＩωοRC＇φ/Ａη␅"),  # testCasesSingleEdge 1149
    ('LeftCrLfHtVt', "\t？␒>｜\x1fκUＲ\x15\t＞'λ\x1b：ＡｌRＩωοRC＇φ/Ａ␉␅", "␉？␒>｜\x1fκUＲ\x15\t＞'λ\x1b：ＡｌRＩωοRC＇φ/Ａ␉␅"),  # testCasesSingleEdge 1150
    ('RightSpace', ' λM ␉DZ\x10␒Ｍ ３\x19κ＇\nｐτ_χπ\rYρ／␡%\x19␅␠', ' λM ␉DZ\x10␒Ｍ ３\x19κ＇\nｐτ_χπ\rYρ／␡%\x19␅‛␠'),  # testCasesSingleEdge 2521
    ('RightSpace', 'ｐλM ␉DZ\x10␒Ｍ ３\x19κ＇\nｐτ_χπ\rYρ／␡%\x19␅ ', 'ｐλM ␉DZ\x10␒Ｍ ３\x19κ＇\nｐτ_χπ\rYρ／␡%\x19␅␠'),  # testCasesSingleEdge 2533
    ('RightPeriod', '.^εχ＜ρ>\x05␘ｂ.λ！\x1c␘κｆ␜ｃ％Gy*\x1ae+\rＧ\r．', '.^εχ＜ρ>\x05␘ｂ.λ！\x1c␘κｆ␜ｃ％Gy*\x1ae+\rＧ\r‛．'),  # testCasesSingleEdge 2902
    ('RightPeriod', '␙^εχ＜ρ>\x05␘ｂ.λ！\x1c␘κｆ␜ｃ％Gy*\x1ae+\rＧ\r.', '␙^εχ＜ρ>\x05␘ｂ.λ！\x1c␘κｆ␜ｃ％Gy*\x1ae+\rＧ\r．'),  # testCasesSingleEdge 2914
    ('Ctl,RightPeriod', "\x11␌＞β␔#'ｗσ０.a@jａφ␔τvFＭκ␡ τ；ｌ\x0fｍ\x16", "␑‛␌＞β‛␔#'ｗσ０.a@jａφ‛␔τvFＭκ␡ τ；ｌ␏ｍ␖"),  # testCasesSingleEdge 3258
    ('Ctl,RightPeriod', ".．＞β␔#'ｗσ０.a@jａφ␔τvFＭκ␡ τ；ｌ\x0fｍ\x16", ".．＞β‛␔#'ｗσ０.a@jａφ‛␔τvFＭκ␡ τ；ｌ␏ｍ␖"),  # testCasesSingleEdge 3259
    ('RightCrLfHtVt', '\t␡ημ␈\x03gｄ?χ\t#␛\n：＼Ｍπψ/\n<：I>ＢbUυ␉', '\t␡ημ␈\x03gｄ?χ\t#␛\n：＼Ｍπψ/\n<：I>ＢbUυ‛␉'),  # testCasesSingleEdge 3286
    ('RightCrLfHtVt', '␘␡ημ␈\x03gｄ?χ\t#␛\n：＼Ｍπψ/\n<：I>ＢbUυ\t', '␘␡ημ␈\x03gｄ?χ\t#␛\n：＼Ｍπψ/\n<：I>ＢbUυ␉'),  # testCasesSingleEdge 3298
    ('RightCrLfHtVt', 'n\x0f%πη？\x1b＇␈τ\n"uτｋ（␡\x17οh\x04\x1df␞θ：９␅）\n', 'n\x0f%πη？\x1b＇␈τ\n"uτｋ（␡\x17οh\x04\x1df␞θ：９␅）␊'),  # testCasesSingleEdge 3317
    ('Del,RightCrLfHtVt', '\t３ιφ*，?]\x0fυ\t％dX)Sγω／<␂\uff00␋\x07２\n\r␅␈␉', '\t３ιφ*，?]\x0fυ\t％dX)Sγω／<␂\uff00␋\x07２\n\r␅␈‛␉'),  # testCasesSingleEdge 4578
    ('Del,RightCrLfHtVt', '］３ιφ*，?]\x0fυ\t％dX)Sγω／<␂\uff00␋\x07２\n\r␅␈\t', '］３ιφ*，?]\x0fυ\t％dX)Sγω／<␂\uff00␋\x07２\n\r␅␈␉'),  # testCasesSingleEdge 4590
    ('LeftSpace,RightSpace', ' ', '␠'),  # testCasesSingleEdge 4655
    ('LeftSpace,RightSpace', '  ', '␠␠'),  # testCasesSingleEdge 4656
    ('LeftSpace,RightSpace', '   ', '␠ ␠'),  # testCasesSingleEdge 4657
    ('LeftPeriod,RightPeriod', '...', '．.．'),  # testCasesSingleEdge 4658
    ('Percent,LeftSpace,RightSpace', "  υ=]～η３θqξ＊ρ7：␕[η\x18！\x02ｐ０'U4\x17␃ \x08", "␠ υ=]～η３θqξ＊ρ7：␕[η\x18！\x02ｐ０'U4\x17␃ \x08"),  # testCasesDoubleEdge 3396
    ('Dollar,LeftPeriod,RightCrLfHtVt', '．\x0b\x05δ／d0␆\x0eπ\t｝␐βυ８ｕ\x7f５2＼\x08u?Ｆζ／／\x0bψ', '‛．\x0b\x05δ／d0␆\x0eπ\t｝␐βυ８ｕ\x7f５2＼\x08u?Ｆζ／／\x0bψ'),  # testCasesDoubleEdge 1637
    ('Del,RightSpace,RightCrLfHtVt', 'λ\nοβ\x1aｆ[＊\x1cGdＮ␑␞κ％ν）Ｈ~␖\x06θ/g>␡Ｄ\n ', 'λ\nοβ\x1aｆ[＊\x1cGdＮ␑␞κ％ν）Ｈ~␖\x06θ/g>‛␡Ｄ\n␠'),  # testCasesDoubleEdge 4226
    ('Hash,LeftSpace,RightSpace', 'ς ｆ＿␟κυ｜/z3Ｕπ:␕␎\x10／｀\x03rψ?%uｆ\nＨ ␠', 'ς ｆ＿␟κυ｜/z3Ｕπ:␕␎\x10／｀\x03rψ?%uｆ\nＨ ‛␠'),  # testCasesDoubleEdge 507
    ('DoubleQuote,LeftSpace,RightCrLfHtVt', '␠\nνｙ{\x13］π\r＂"\x0fδｗμ␈␔\x03；PD␞＠␏L＇ιk\nι', '‛␠\nνｙ{\x13］π\r‛＂＂\x0fδｗμ␈␔\x03；PD␞＠␏L＇ιk\nι'),  # testCasesDoubleEdge 755
    ('Hash,RightSpace,RightCrLfHtVt', '\x10 ！＜ｉ］φ/Ｙ8*\x1eξwισμ\tχ\x0bY；UＴ？␟１U ␉', '\x10 ！＜ｉ］φ/Ｙ8*\x1eξwισμ\tχ\x0bY；UＴ？␟１U ‛␉'),  # testCasesDoubleEdge 5691
    ('LeftPeriod,LeftTilde,Semicolon', '．~\x17σ␉／θ\tχ８D␜χ|)ｒ␍ｏｓ\x16σDｑ!\x1a\x10μ\x01~␇', '‛．~\x17σ␉／θ\tχ８D␜χ|)ｒ␍ｏｓ\x16σDｑ!\x1a\x10μ\x01~␇'),  # testCasesDoubleEdge 1001
    ('RightSpace,RightPeriod,Semicolon', '<.\x19mＳ*｜W:Ｓ1＋>ηθ\x16φκ=␗;％μＮ␋β␟］.␠', '<.\x19mＳ*｜W:Ｓ1＋>ηθ\x16φκ=␗；％μＮ␋β␟］.‛␠'),  # testCasesDoubleEdge 3891
]

# encoder_test.go's hand-written cases (TestEncodeInvalidUnicode, TestEncodeDot)
KNOWN_BYTES: list[tuple[str, bytes, str]] = [
    ("InvalidUtf8", b"\xbf", "‛BF"),
    ("InvalidUtf8", b"\xbf\xfe", "‛BF‛FE"),
    ("InvalidUtf8", b"a\xbf\xfeb", "a‛BF‛FEb"),
    ("InvalidUtf8", b"a\xbf" + "ξ".encode() + b"\xfeb", "a‛BFξ‛FEb"),
    ("InvalidUtf8,BackSlash", b"a\xbf\\\xfeb", "a‛BF＼‛FEb"),
    ("None", b"\xbf", raw(b"\xbf")),
    ("None", b"a\xbf\xfeb", raw(b"a\xbf\xfeb")),
    ("BackSlash", b"a\xbf\\\xfeb", raw(b"a\xbf") + "＼" + raw(b"\xfeb")),
    ("Dot", b".", "．"), ("Dot", b"..", "．．"), ("Dot", b"...", "..."), ("Dot", b". .", ". ."),
    ("None", b".", "."), ("None", b"..", ".."),
]

# TestDecodeHalf: decoding names no encoder wrote
DECODE_ONLY: list[tuple[str, str, str]] = [
    ("None", "‛", "‛"), ("None", "‛‛", "‛"), ("None", "‛a‛", "‛a‛"),
    ("InvalidUtf8", "a‛B‛Eg", "a‛B‛Eg"), ("InvalidUtf8", "a‛B＼‛Eg", "a‛B＼‛Eg"),
    ("InvalidUtf8,BackSlash", "a‛B＼‛Eg", "a‛B\\‛Eg"),
    # bytes from "‛NN" join into UTF-8 as rclone's bytes do
    ("InvalidUtf8", "‛C3‛A9", "é"), ("InvalidUtf8", "‛c3‛a9x", "éx"), ("InvalidUtf8", "‛C3x", raw(b"\xc3x")),
    ("InvalidUtf8", "‛41", "A"), ("None", "‛41", "‛41"),
]


@pytest.mark.parametrize(("mask", "name", "encoded"), KNOWN, ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(KNOWN)])
def test_known_answers_from_rclone(mask, name, encoded):
    enc = parse_encoding(mask)
    assert enc.encode(name) == encoded
    assert enc.decode(encoded) == name


@pytest.mark.parametrize(("mask", "name", "encoded"), KNOWN_BYTES,
                         ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(KNOWN_BYTES)])
def test_known_answers_invalid_utf8_and_dot(mask, name, encoded):
    enc = parse_encoding(mask)
    assert enc.encode(raw(name)) == encoded
    assert enc.decode(encoded) == raw(name)


@pytest.mark.parametrize(("mask", "stored", "name"), DECODE_ONLY)
def test_decode_of_names_no_encoder_wrote(mask, stored, name):
    assert parse_encoding(mask).decode(stored) == name


def test_the_known_answers_cover_many_masks():
    assert len(KNOWN) >= 40 and len({m for m, _, _ in KNOWN}) >= 30


# replacement runes: every FULLWIDTH form rclone uses, SYMBOL FOR NUL..US, SPACE, DELETE, the quote
REPLACEMENTS = ("".join(chr(ord(c) + 0xFEE0) for c in '/<>"\'`$:?*|#%\\[];!.~')
                + "".join(chr(0x2400 + i) for i in range(0x22)) + QUOTE)
INVALID = [raw(b) for b in (b"\xff", b"a\xffb", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf",
                            b"\xf4\x90\x80\x80", b"\x80\x80", b"x\xe2\x80\x9b\xff ")]


def _handpicked() -> list[str]:
    names = []
    for c in map(chr, range(128)):
        names += [c, f"a{c}b", f"{c}x", f"x{c}", c * 2, f" {c} ", f".{c}."]
    for c in REPLACEMENTS:
        names += [c, f"a{c}b", f"{c}x", f"x{c}", c * 2, QUOTE + c, c + QUOTE, f"{QUOTE}{c}{QUOTE}"]
    names += [".", "..", "...", "．", "．．", "．．．", ". .", " ", "  ", " . ", "..x", "x..", "~", "~x",
              "‛", "‛‛", "‛‛‛", "‛ ", "‛‛ ", "‛‛‛ ", " ‛", "‛.", "‛‛.", "x‛‛\t", "‛\t", "‛41", "‛‛41", "‛C3‛A9",
              "‛FF", "a‛", "‛␠", "␠‛", "‛␠ ", " ␠", "␠ ", "\t\n\v\r", "\r\n", "résumé", "日本語.txt", "emoji 😀",
              "dir name with spaces.txt", "\x7f\x7f", "\x01\x1f"]
    return names + INVALID + [n + c for n in INVALID for c in (" ", ".", "\t")]


def _random(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "ab09AF ./\\~\t\n\r\x00\x01\x7f" + '<>"\'`$:?*|#%[];!' + REPLACEMENTS + "é😀" + "".join(INVALID[:3])
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(count)]


NAMES = list(dict.fromkeys(_handpicked() + _random(3000, 1975)))
ROUND_TRIP = [SFTP, FTP, "Raw", "None", "Slash,Dot", ALL, EDGES, DEFAULTS["smb"], DEFAULTS["webdav-sharepoint-ntlm"],
              "LeftCrLfHtVt,RightCrLfHtVt,Ctl,InvalidUtf8", "InvalidUtf8", "RightSpace", "LeftSpace,RightPeriod"]


@pytest.mark.parametrize("mask", ROUND_TRIP)
def test_round_trip(mask):
    enc = parse_encoding(mask)
    bad = [(n, enc.encode(n), enc.decode(enc.encode(n))) for n in NAMES if enc.decode(enc.encode(n)) != n]
    assert not bad[:10], f"{len(bad)} of {len(NAMES)} names do not round-trip"


@pytest.mark.parametrize("mask", [m for m in ROUND_TRIP if m != "Raw"])
def test_encoded_names_avoid_what_the_flags_name(mask):
    enc = parse_encoding(mask)
    for name in NAMES:
        out = enc.encode(name)
        assert "\x00" not in out, name
        if enc.has("Slash"):
            assert "/" not in out, name
        if enc.has("Dot"):
            assert out not in (".", ".."), name
        if enc.has("InvalidUtf8"):
            out.encode("utf-8")  # no surrogates left: valid UTF-8
        if enc.has("Ctl"):
            assert not any("\x01" <= c <= "\x1f" for c in out), name
        if enc.has("RightSpace") and out:
            assert out[-1] != " ", name
        if enc.has("LeftSpace") and out:
            assert out[0] != " ", name


def test_unchanged_names_are_returned_as_they_are():
    """The fast path: nothing to do returns the same object, for encode and decode."""
    for mask in (SFTP, FTP, ALL, "None"):
        enc = parse_encoding(mask)
        for name in ("hello world.txt", "a" * 200, "日本語", "x.y.z", ""):
            assert enc.encode(name) is name
            assert enc.decode(name) is name
    raw_enc = parse_encoding("Raw")
    odd = "a/b\x00‛"
    assert raw_enc.encode(odd) is odd and raw_enc.decode(odd) is odd
    assert parse_encoding(SFTP).encode("a/b") == "a／b"


def test_paths_are_coded_per_segment():
    enc = parse_encoding(FTP)
    assert enc.encode_path("a/b\x01/../c ") == "a/b␁/．．/c␠"
    assert enc.decode_path("a/b␁/．．/c␠") == "a/b\x01/../c "
    assert enc.encode_path("/x./") == "/x./"
    assert enc.encode_path("") == "" and enc.encode_path("/") == "/"
    assert enc.decode_path(enc.encode_path("d ir /‛ /．/.")) == "d ir /‛ /．/."


def test_a_trailing_symbol_after_an_even_quote_run_is_not_quoted():
    """Where rclone 1.75.2 differs (module docstring): "‛ " encodes to "‛‛␠" (as in rclone),
    and decodes back to "‛ " (rclone gives "‛␠")."""
    enc = parse_encoding("RightSpace,RightPeriod,RightCrLfHtVt")
    assert enc.encode("‛ ") == "‛‛␠" and enc.decode("‛‛␠") == "‛ "
    assert enc.encode("‛␠") == "‛‛‛␠" and enc.decode("‛‛‛␠") == "‛␠"
    assert enc.decode("x‛‛‛‛．") == "x‛‛." and enc.decode("‛‛␉") == "‛\t"


PARSE_OK: list[tuple[str, int, str]] = [
    ("Raw", 1, "Raw"), ("None", 0, "None"), ("Slash", 2, "Slash"), (" Slash , Dot ", 2 | 1 << 25, "Slash,Dot"),
    (SFTP, 2 | 1 << 15 | 1 << 16 | 1 << 25, SFTP), ("Dot,Ctl,Del,Slash", 2 | 1 << 15 | 1 << 16 | 1 << 25, SFTP),
    ("0x2018002", 0x2018002, SFTP), ("017", 15, "Raw,Slash,LtGt,DoubleQuote"), ("0_17", 15, "Raw,Slash,LtGt,DoubleQuote"),
    ("0x_1", 1, "Raw"), ("1_0", 10, "Slash,DoubleQuote"), ("0b11", 3, "Raw,Slash"), ("0O2", 2, "Slash"),
    ("Slash,0x80000000", 2 | 1 << 31, "Slash,0x80000000"), ("Raw,Slash", 3, "Raw,Slash"),
    ("LtGt,DoubleQuote,Colon,Question,Asterisk,Pipe", 0x78C, "LtGt,DoubleQuote,Colon,Question,Asterisk,Pipe"),
    ("18446744073709551615", (1 << 64) - 1, None),
]
PARSE_BAD: list[tuple[str, str]] = [
    ("Foo", "Foo"), ("slash", "slash"), ("Base", "Base"), ("Standard", "Standard"), ("Display", "Display"),
    ("Win", "Win"), ("", ""), ("Slash,,Dot", ""), ("Slash,Foo\tBar", "Foo\\tBar"), ("+1", "+1"), ("08", "08"),
    ("1__0", "1__0"), ("0x", "0x"), ("0xFGFFF", "0xFGFFF"), ("18446744073709551616", "18446744073709551616"),
    ("Slash;Dot", "Slash;Dot"), ('a"b', 'a\\"b'),
]


@pytest.mark.parametrize(("text", "mask", "shown"), PARSE_OK)
def test_parse(text, mask, shown):
    enc = parse_encoding(text)
    assert enc.mask == mask
    if shown is not None:
        assert str(enc) == shown
        assert parse_encoding(str(enc)) == enc


@pytest.mark.parametrize(("text", "quoted"), PARSE_BAD)
def test_parse_errors_name_the_bad_part_and_the_valid_names(text, quoted):
    with pytest.raises(ValueError) as err:
        parse_encoding(text)
    assert str(err.value) == (
        f'bad encoding "{quoted}": possible values are: Asterisk, BackQuote, BackSlash, Colon, CrLf, Ctl, Del, '
        "Dollar, Dot, DoubleQuote, Exclamation, Hash, InvalidUtf8, LeftCrLfHtVt, LeftPeriod, LeftSpace, LeftTilde, "
        "LtGt, None, Percent, Pipe, Question, Raw, RightCrLfHtVt, RightPeriod, RightSpace, Semicolon, SingleQuote, "
        "Slash, SquareBracket")


def test_constants_and_defaults():
    assert str(BASE) == "Slash,Dot" and str(STANDARD) == SFTP
    for name, text in DEFAULTS.items():
        assert str(parse_encoding(text)) == text, name
    assert DEFAULTS["sftp"] == SFTP and DEFAULTS["ftp"] == FTP
    assert parse_encoding(SFTP) == Encoder(STANDARD.mask) and len({parse_encoding(SFTP), STANDARD}) == 1
    assert STANDARD.has("Ctl") and not STANDARD.has("RightSpace")
    with pytest.raises(ValueError):
        Encoder(-1)


# --- the reference rclone ----------------------------------------------------------------------

INTEROP = [SFTP, FTP, "0x2018002", "None", "Raw", ALL, EDGES, DEFAULTS["smb"]]


def _storable(name: str) -> bool:
    if name in ("", ".", "..") or "/" in name or "\x00" in name:
        return False
    try:
        return len(name.encode("utf-8", "surrogateescape")) <= 255
    except UnicodeEncodeError:
        return False


def _touch_all(directory: Path, names: list[str]) -> None:
    directory.mkdir()
    for name in names:
        with open(os.path.join(os.fsencode(directory), name.encode("utf-8", "surrogateescape")), "wb"):
            pass


def _listdir(directory: Path) -> list[bytes]:
    return sorted(os.listdir(os.fsencode(directory)))


def _b(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


INTEROP_NAMES = _handpicked() + _random(400, 2024)


@pytest.mark.rclone
@pytest.mark.parametrize("mask", INTEROP)
def test_rclone_stores_names_as_we_encode_them(run_rclone, tmp_path, mask):
    """rclone copies raw names (a Raw source) into --local-encoding <mask>: the names on disk are ours."""
    enc = parse_encoding(mask)
    names = [n for n in dict.fromkeys(INTEROP_NAMES) if _storable(n) and _storable(enc.encode(n))]
    assert len(names) > 500
    _touch_all(tmp_path / "src", names)
    res = run_rclone("copy", "--config", "/dev/null", "--transfers", "32", "--local-encoding", mask,
                     f":local,encoding=Raw:{tmp_path / 'src'}", str(tmp_path / "dst"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert _listdir(tmp_path / "dst") == sorted(_b(enc.encode(n)) for n in names)


# names on disk that no encoder wrote
ODD_STORED = ["‛41", "‛", "a‛", "‛x", "‛‛‛", "＊", "‛＊", "‛zz", "␀", "‛C3‛A9", "‛c3‛a9", "‛E2‛82", "‛E2‛82‛AC",
              "．x", "x．", "␠", "␠␠", "～", "～～", "␉x", "x␉", "‛␠x", raw(b"\xff"), "‛FF" + raw(b"\xff"),
              "‛2F", "‛00x", "‛‛␠x", "‛␉", "‛．‛．", "．．", "‛．", "．"]


def _rclone_decodes_otherwise(enc: Encoder, stored: str) -> bool:
    """The deviation in the module docstring: an even run (>= 2) of quotes before a trailing symbol."""
    right = {"RightSpace": "␠", "RightPeriod": "．", "RightCrLfHtVt": "␉␊␋␍"}
    if not stored or not any(enc.has(f) and stored[-1] in s for f, s in right.items()):
        return False
    run = len(stored[:-1]) - len(stored[:-1].rstrip(QUOTE))
    return run >= 2 and run % 2 == 0


@pytest.mark.rclone
@pytest.mark.parametrize("mask", INTEROP)
def test_rclone_lists_stored_names_as_we_decode_them(run_rclone, tmp_path, mask):
    """Names on disk (ours and odd ones) listed by rclone with --local-encoding <mask>: lsf prints
    rclone's Standard form of the decoded name; a copy into a Raw target gives the decoded name itself."""
    enc = parse_encoding(mask)
    stored = [s for s in dict.fromkeys([enc.encode(n) for n in INTEROP_NAMES] + INTEROP_NAMES + ODD_STORED)
              if _storable(s) and not _rclone_decodes_otherwise(enc, s)]
    # rclone's remote names are in its Standard encoding; a backend whose encoding is Standard
    # itself hands its names over as they are (rclone's ToStandardName), a newline too
    if enc == STANDARD:
        stored = [s for s in stored if "\n" not in s]
    assert len(stored) > 500
    _touch_all(tmp_path / "stored", stored)
    res = run_rclone("lsf", "--config", "/dev/null", "--files-only", "--local-encoding", mask,
                     str(tmp_path / "stored"), binary=True)
    assert res.returncode == 0, res.stderr[-2000:]
    def shown(s: str) -> str:
        return s if enc == STANDARD else STANDARD.encode(enc.decode(s))

    assert sorted(res.stdout.split(b"\n")[:-1]) == sorted(_b(shown(s)) for s in stored)

    # rclone opens a listed name by encoding it again: only names its encoder writes can be copied
    copyable = [s for s in stored if _storable(enc.decode(s)) and enc.encode(enc.decode(s)) == s]
    assert len(copyable) > 400
    _touch_all(tmp_path / "some", copyable)
    res = run_rclone("copy", "--config", "/dev/null", "--transfers", "32", "--local-encoding", mask,
                     str(tmp_path / "some"), f":local,encoding=Raw:{tmp_path / 'out'}", binary=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert _listdir(tmp_path / "out") == sorted(_b(enc.decode(s)) for s in copyable)


@pytest.mark.rclone
def test_rclone_decodes_an_even_quote_run_before_a_trailing_symbol_as_quoted(run_rclone, tmp_path):
    """The one deviation, shown on rclone itself: it writes "‛ " as "‛‛␠" (so do we) but lists
    "‛‛␠" as "‛␠"; we give back "‛ "."""
    mask = "RightSpace"
    _touch_all(tmp_path / "src", ["‛ "])
    assert run_rclone("copy", "--config", "/dev/null", "--local-encoding", mask,
                      f":local,encoding=Raw:{tmp_path / 'src'}", str(tmp_path / "dst")).returncode == 0
    assert _listdir(tmp_path / "dst") == [_b("‛‛␠")] == [_b(parse_encoding(mask).encode("‛ "))]
    res = run_rclone("lsf", "--config", "/dev/null", "--local-encoding", mask, str(tmp_path / "dst"), binary=True)
    assert res.stdout == _b(STANDARD.encode("‛␠")) + b"\n"
    assert parse_encoding(mask).decode("‛‛␠") == "‛ "


@pytest.mark.rclone
@pytest.mark.parametrize("text", [t for t, _, _ in PARSE_OK] + [t for t, _ in PARSE_BAD])
def test_rclone_accepts_and_rejects_the_same_encodings(run_rclone, tmp_path, text):
    res = run_rclone("lsf", "--config", "/dev/null", "--local-encoding", text, str(tmp_path))
    try:
        parse_encoding(text)
    except ValueError as e:
        assert res.returncode != 0
        assert f"failed: {e}\n" in res.stderr
    else:
        assert res.returncode == 0, res.stderr
