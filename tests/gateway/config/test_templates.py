"""The template language: what it renders, and everything it refuses to name."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config.templates import Template, TemplateError
from gateway.events.model import PresenceDwell, Subject, format_ts
from gateway.rules.context import EventContext

PSEUDONYM = "5f" * 32


class NoContent:
    def zone(self, zone: str) -> None:
        return None

    def gtin(self, gtin: str) -> None:
        return None

    def offer(self, pseudonym: str) -> dict[str, str]:
        return {"text": "-20%"}


def event(subject_id: str = PSEUDONYM) -> PresenceDwell:
    return PresenceDwell(
        id="e1",
        ts=format_ts(1_790_000_000.0),
        store="s",
        gateway="g",
        zone="shelf-a",
        subject=Subject(kind="customer", id=subject_id),
        dwell_s=12.345,
        since=format_ts(0),
    )


def render(source: str, subject_id: str = PSEUDONYM) -> str | None:
    return Template.parse(source).render(EventContext(event(subject_id), NoContent(), None).resolve)


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("Hello", "Hello"),
        ("{zone}", "shelf-a"),
        ("{dwell_s:.0f} s at {zone}", "12 s at shelf-a"),
        ("{dwell_s}", "12.345"),
        ("[{zone:>9}]", "[  shelf-a]"),
        ("{{zone}} {kind}", "{zone} customer"),
        ("{offer.text}", "-20%"),
        ("{content.zone.title|Welcome}", "Welcome"),
        ("{gtin|no item}", "no item"),
    ],
)
def test_fields_render_from_the_event_and_content(source: str, text: str) -> None:
    assert render(source) == text


def test_a_missing_value_without_fallback_renders_nothing() -> None:
    assert render("Fresh: {content.zone.title}") is None


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("{subject.id}", "customer ids can never be shown"),
        ("{id}", "customer ids can never be shown"),
        ("{customer_id}", "customer ids can never be shown"),
        ("{offer.pseudonym}", "customer ids can never be shown"),
        ("{content.zone.epc}", "customer ids can never be shown"),
        ("{subject}", "customer ids can never be shown"),
        ("{zone.__class__}", "is not a field name"),
        ("{zone[0]}", "is not a field name"),
        ("{zone!r}", "is not a field name"),
        ("{0}", "is not a field name"),
        ("{}", "is not a field name"),
        ("{zone.upper}", "unknown field"),
        ("{secret}", "unknown field"),
        ("{content.store.x}", "unknown field"),
        ("{zone:.2f}", "is text, not a number"),
        ("{dwell_s:{zone}}", "unmatched"),
        ("{dwell_s:,.2e}", "is not allowed"),
        ("a } b", "unmatched '}'"),
        ("a { b", "unmatched '{'"),
        ("x" * 513, "longer than 512"),
    ],
)
def test_refused_templates_say_why(source: str, why: str) -> None:
    with pytest.raises(TemplateError, match=why.replace("[", r"\[")):
        Template.parse(source)


@given(st.text(max_size=60))
def test_any_text_parses_or_is_refused_with_our_error(source: str) -> None:
    with contextlib.suppress(TemplateError):
        Template.parse(source)


@given(
    st.text(alphabet=st.sampled_from("{}|:.aeoz_ >"), max_size=30),
    st.binary(min_size=8, max_size=8),
)
def test_no_template_ever_shows_the_subject_id(source: str, raw: bytes) -> None:
    # Even with privacy.customer_ids = "raw", where the event carries the card number itself.
    # (No digits or capitals in the alphabet: literal text could spell a card number.)
    card = raw.hex().upper()
    try:
        template = Template.parse(source)
    except TemplateError:
        return
    shown = template.render(EventContext(event(card), NoContent(), None).resolve)
    assert shown is None or card not in shown
