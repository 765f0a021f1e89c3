from engine.formats.text_format import TextFormat, charset_of, decode_guessing, media_type_of


def test_lines_are_numbered_from_one() -> None:
    assert list(TextFormat().flatten(b"first\n\nthird\r\nfourth")) == [
        ("line 1", "first"),
        ("line 2", ""),
        ("line 3", "third"),
        ("line 4", "fourth"),
    ]


def test_render_is_the_text() -> None:
    assert TextFormat().render("多行\n文本".encode()) == "多行\n文本"


def test_charset_and_media_type_are_read_from_content_type() -> None:
    assert charset_of('application/json; charset="GBK"') == "gbk"
    assert charset_of("text/plain;format=flowed; charset=utf-8") == "utf-8"
    assert charset_of("text/plain") is None
    assert charset_of(None) is None
    assert media_type_of("Application/JSON; charset=utf-8") == "application/json"


def test_decoding_guesses_bom_utf8_then_gb18030() -> None:
    assert decode_guessing("样本".encode("utf-8-sig")) == "样本"
    assert decode_guessing("样本".encode("utf-16")) == "样本"
    assert decode_guessing("样本".encode()) == "样本"
    assert decode_guessing("样本".encode("gb18030")) == "样本"
