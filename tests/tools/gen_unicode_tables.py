#!/usr/bin/env python3
"""gen_unicode_tables.py: writes src/unicode_tables.c, the code point category tables of the
tokenizer's pre-tokenizer, from the Unicode Character Database.

    apt-get install -y unicode-data          # gives /usr/share/unicode/UnicodeData.txt, PropList.txt
    python3 tests/tools/gen_unicode_tables.py [UCD_DIR] > src/unicode_tables.c

The categories must be the ones llama.cpp uses (its src/unicode-data.cpp), because the split of the
text into words decides the tokens:
  * every code point gets one category flag from its General Category (UnicodeData.txt field 2):
    C* (Cc Cf Co Cs) control, L* letter, M* mark, N* number, P* punctuation, S* symbol,
    Z* separator; unassigned code points (Cn, absent from the file) are "undefined";
  * \\s (the whitespace flag) is the White_Space property of PropList.txt, added on top;
  * llama.cpp's table is Unicode 15.1. Debian's unicode-data package is 15.0, so when the given
    database lacks the 15.1 additions they are applied here (CJK Extension I U+2EBF0..U+2EE5D Lo,
    U+2FFC..U+2FFF So, U+31EF So: the whole 15.0 -> 15.1 delta). A database newer than 15.1 is
    refused unless --allow-newer is given (new letters would split text differently from llama.cpp).

Output: sorted ranges {first code point, flags} (a range lasts until the next one starts), plus a
direct table for U+0000..U+00FF. The flags' bit values are the ones of src/unicode.h.
"""
import os
import sys

FLAG_UNDEFINED = 0x0001
FLAG_NUMBER = 0x0002
FLAG_LETTER = 0x0004
FLAG_SEPARATOR = 0x0008
FLAG_MARK = 0x0010
FLAG_PUNCTUATION = 0x0020
FLAG_SYMBOL = 0x0040
FLAG_CONTROL = 0x0080
FLAG_WHITESPACE = 0x0100

CATEGORY_FLAG = {
    "Cn": FLAG_UNDEFINED,
    "Cc": FLAG_CONTROL, "Cf": FLAG_CONTROL, "Co": FLAG_CONTROL, "Cs": FLAG_CONTROL,
    "Ll": FLAG_LETTER, "Lm": FLAG_LETTER, "Lo": FLAG_LETTER, "Lt": FLAG_LETTER, "Lu": FLAG_LETTER,
    "Mc": FLAG_MARK, "Me": FLAG_MARK, "Mn": FLAG_MARK,
    "Nd": FLAG_NUMBER, "Nl": FLAG_NUMBER, "No": FLAG_NUMBER,
    "Pc": FLAG_PUNCTUATION, "Pd": FLAG_PUNCTUATION, "Pe": FLAG_PUNCTUATION, "Pf": FLAG_PUNCTUATION,
    "Pi": FLAG_PUNCTUATION, "Po": FLAG_PUNCTUATION, "Ps": FLAG_PUNCTUATION,
    "Sc": FLAG_SYMBOL, "Sk": FLAG_SYMBOL, "Sm": FLAG_SYMBOL, "So": FLAG_SYMBOL,
    "Zl": FLAG_SEPARATOR, "Zp": FLAG_SEPARATOR, "Zs": FLAG_SEPARATOR,
}

MAX_CP = 0x110000

# The Unicode 15.0 -> 15.1 additions (627 code points), as (first, last, category).
UNICODE_15_1_DELTA = [
    (0x2EBF0, 0x2EE5D, "Lo"),  # CJK Unified Ideographs Extension I
    (0x2FFC, 0x2FFF, "So"),    # Ideographic Description Characters
    (0x31EF, 0x31EF, "So"),    # CJK stroke HXG
]


def read_unicode_data(path):
    """Yields (code point, category, simple lowercase mapping or None) for every assigned cp."""
    first = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split(";")
            if len(fields) < 15:
                continue
            cp = int(fields[0], 16)
            name, cat = fields[1], fields[2]
            lower = int(fields[13], 16) if fields[13] else None
            if name.endswith(", First>"):
                first = cp
                continue
            if name.endswith(", Last>"):
                for c in range(first, cp):
                    yield c, cat, None
                first = None
            yield cp, cat, lower


def read_white_space(path):
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            cps, prop = [x.strip() for x in line.split(";")]
            if prop != "White_Space":
                continue
            if ".." in cps:
                a, b = cps.split("..")
                out.update(range(int(a, 16), int(b, 16) + 1))
            else:
                out.add(int(cps, 16))
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    allow_newer = "--allow-newer" in sys.argv
    ucd = args[0] if args else "/usr/share/unicode"

    flags = [FLAG_UNDEFINED] * MAX_CP
    cat_of = {}
    lower_of = {}
    for cp, cat, lower in read_unicode_data(os.path.join(ucd, "UnicodeData.txt")):
        flags[cp] = CATEGORY_FLAG[cat]
        cat_of[cp] = cat
        if lower is not None:
            lower_of[cp] = lower

    if 0x1C89 in cat_of and not allow_newer:  # U+1C89 is a Unicode 16.0 addition
        sys.exit("UnicodeData.txt is newer than 15.1 (llama.cpp's tables); pass --allow-newer")
    note = "as given"
    if 0x2EBF0 not in cat_of:
        for a, b, cat in UNICODE_15_1_DELTA:
            for cp in range(a, b + 1):
                assert cp not in cat_of, hex(cp)
                flags[cp] = CATEGORY_FLAG[cat]
        note = "15.0 + the 15.1 delta (CJK Ext. I, U+2FFC..2FFF, U+31EF)"

    white = read_white_space(os.path.join(ucd, "PropList.txt"))
    # llama.cpp hard-codes this list (PropList's White_Space); check they agree.
    expected = set(range(0x09, 0x0E)) | set(range(0x2000, 0x200B)) | {
        0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000}
    assert white == expected, sorted(white ^ expected)
    for cp in white:
        flags[cp] |= FLAG_WHITESPACE

    # The splitter lower-cases only the letter after an apostrophe and compares it with ASCII
    # s t m d r e v l: the C code uses ASCII folding, valid only if no other code point lowercases
    # to one of those letters.
    for cp, lo in lower_of.items():
        if lo < 0x80 and chr(lo) in "stmdrevl":
            assert cp == lo - 0x20, "non-ASCII code point %04X lowercases to %c" % (cp, lo)

    ranges = [(0, flags[0])]
    for cp in range(1, MAX_CP):
        if flags[cp] != ranges[-1][1]:
            ranges.append((cp, flags[cp]))

    out = []
    w = out.append
    w("/* unicode_tables.c: GENERATED by tests/tools/gen_unicode_tables.py -- do not edit.")
    w(" *")
    w(" * Regenerate (Debian/Ubuntu):")
    w(" *   apt-get install -y unicode-data")
    w(" *   python3 tests/tools/gen_unicode_tables.py /usr/share/unicode > src/unicode_tables.c")
    w(" *")
    w(" * Unicode General Category flags (+ White_Space) per code point, the same as llama.cpp's")
    w(" * src/unicode-data.cpp (Unicode 15.1). Database used: %s." % note)
    w(" */")
    w('#include "unicode.h"')
    w("")
    w("const uint16_t lfm2_ucp_latin1_flags[256] = {")
    for i in range(0, 256, 8):
        w("    " + " ".join("0x%04X," % flags[c] for c in range(i, i + 8)))
    w("};")
    w("")
    w("const uint32_t lfm2_ucp_n_ranges = %d;" % len(ranges))
    w("")
    w("/* first code point of each range, ascending; the range ends where the next begins */")
    w("const uint32_t lfm2_ucp_range_first[%d] = {" % len(ranges))
    for i in range(0, len(ranges), 8):
        w("    " + " ".join("0x%06X," % r[0] for r in ranges[i:i + 8]))
    w("};")
    w("")
    w("const uint16_t lfm2_ucp_range_flags[%d] = {" % len(ranges))
    for i in range(0, len(ranges), 10):
        w("    " + " ".join("0x%04X," % r[1] for r in ranges[i:i + 10]))
    w("};")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
