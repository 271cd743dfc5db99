"""``marketpipe dlq list|redrive``."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from marketpipe.kafka import topics
from marketpipe.settings import Settings

if TYPE_CHECKING:
    from marketpipe.dlq import Filter

DESCRIPTION = """\
What was dead-lettered, and a second try.

`list` summarises md.dlq by provider and reason. `redrive` decodes the frames of those dead
letters again with today's decoders (a dead letter too large to carry its frame is re-read
from its raw topic), publishes what now parses to the md.* topics, and reports how many were
fixed and how many still fail. Redrive never writes dead letters of its own: what still fails
stays where it is.
"""


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.dlq import summarise
    from marketpipe.tail import iso_ms

    summary = summarise(settings, _filter(args))
    total = sum(summary.by_reason.values())
    for (provider, reason), n in summary.by_reason.most_common():
        span = f"{iso_ms(summary.first_ms[(provider, reason)])} .. {iso_ms(summary.last_ms[(provider, reason)])}"
        print(f"{n:>8}  {provider:<8} {span}  {reason}")
    print(f"{total} dead letters in {len(summary.by_reason)} reasons"
          + (f"; {summary.unreadable} records on md.dlq are not readable dead letters" if summary.unreadable else ""))
    return 0


def cmd_redrive(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.dlq import redrive
    from marketpipe.replay import parser_version, target_settings

    result = redrive(settings, _filter(args), target_settings(settings, args.to_prefix))
    print(f"redrive with parser {parser_version()}: {result.fixed} fixed ({result.records} records published), "
          f"{result.still_failing} still failing")
    return 0


def _filter(args: argparse.Namespace) -> Filter:
    from marketpipe.dlq import Filter
    from marketpipe.kafka.topicrange import parse_time_ms

    now_ms = int(time.time() * 1000)
    return Filter(parse_time_ms(args.since, now_ms, "--since"),
                  parse_time_ms(args.until, now_ms, "--until") if args.until else None,
                  args.provider, args.reason)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dlq", help="summarise dead letters, or decode them again with today's decoders",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = p.add_subparsers(dest="dlq_command", metavar="list|redrive", required=True)
    for name, func, text in (("list", cmd_list, "count dead letters by provider and reason"),
                             ("redrive", cmd_redrive, "decode dead letters again; publish what now parses")):
        q = dsub.add_parser(name, help=text, description=text)
        q.add_argument("--since", default="72h", help="from: ISO time, a duration ago (15m, 2h, 72h) or epoch ms "
                                                      "(default 72h: the raw topics' retention)")
        q.add_argument("--until", help="to (exclusive), same forms; default: now")
        q.add_argument("--provider", choices=sorted(topics.RAW_TOPICS), help="only this provider's dead letters")
        q.add_argument("--reason", help="only dead letters whose reason contains this text")
        if name == "redrive":
            q.add_argument("--to-prefix", help="publish under this topic prefix instead of the live one")
        q.set_defaults(func=func)
