"""``marketpipe order place|cancel|halt|resume|resolve``: sign and send a command to the trader."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from marketpipe.settings import Settings


def _key(settings: Settings) -> str:
    key = settings.order_signing_key.reveal()
    if not key:
        raise SystemExit("marketpipe order: MARKETPIPE_ORDER_SIGNING_KEY is not set (commands must be signed)")
    return key


def cmd_place(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.trader import commands

    try:
        cmd = commands.place(args.account, args.symbol, args.side, args.price, args.volume, _key(settings),
                             command_id=args.command_id, ttl_s=args.ttl)
    except ValueError as exc:
        print(f"marketpipe order place: {exc}", file=sys.stderr)
        return 2
    return _send(settings, cmd, "place")


def _send(settings: Settings, cmd: dict[str, Any], what: str) -> int:
    """Send a signed command; print its id, or one line saying why it was not sent."""
    from marketpipe.trader import commands

    try:
        commands.send(settings, cmd)
    except (ValueError, RuntimeError) as exc:  # a record the schema refuses, or Kafka did not acknowledge
        print(f"marketpipe order {what}: not sent: {exc}", file=sys.stderr)
        return 1
    print(cmd["command_id"])
    return 0


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.trader import commands

    try:
        cmd = commands.cancel(args.account, args.symbol, _key(settings), target_command_id=args.target_command_id,
                              broker_order_id=args.broker_order_id, command_id=args.command_id, ttl_s=args.ttl)
    except ValueError as exc:
        print(f"marketpipe order cancel: {exc}", file=sys.stderr)
        return 2
    return _send(settings, cmd, "cancel")


def cmd_halt(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.trader import commands

    halt = args.order_command == "halt"
    # halting needs no key (fail-safe) but is signed when there is one; a resume must be signed
    key = settings.order_signing_key.reveal() if halt else _key(settings)
    try:
        commands.set_kill_switch(settings, halt, args.reason, key or "")
    except RuntimeError as exc:
        print(f"marketpipe order {args.order_command}: {exc}", file=sys.stderr)
        return 1
    print("kill switch " + ("ON: the trader accepts no new orders" if halt else "off (signed resume)"))
    return 0


def cmd_resolve(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.trader import commands

    placed = None if args.not_placed else args.placed
    try:
        commands.send_resolution(settings, args.command_id, placed, _key(settings))
    except RuntimeError as exc:
        print(f"marketpipe order resolve: not sent: {exc}", file=sys.stderr)
        return 1
    print(f"{args.command_id}: " + (f"placed as {placed}" if placed else "not placed") + " (signed; the trader records it)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    o = sub.add_parser("order", help="sign and send an order command, or flip the kill switch")
    osub = o.add_subparsers(dest="order_command", metavar="ACTION", required=True)
    p = osub.add_parser("place", help="place a limit order (prints the command id)")
    p.add_argument("--account", required=True)
    p.add_argument("--symbol", required=True, help="canonical A-share symbol, e.g. 600519.SH")
    p.add_argument("--side", required=True, choices=["buy", "sell", "BUY", "SELL"])
    p.add_argument("--price", required=True, help="exact limit price, e.g. 1500.00")
    # checked by commands.place, so a bad number is one line, not argparse's usage block
    p.add_argument("--volume", required=True, help="shares (bonds: 张), a positive whole number")
    p.add_argument("--command-id", default=None, help="idempotency key (default: a new UUID)")
    p.add_argument("--ttl", type=float, default=30.0, help="seconds until the command expires (default 30)")
    p.set_defaults(func=cmd_place)
    c = osub.add_parser("cancel", help="cancel an order by the command that placed it or by broker order id")
    c.add_argument("--account", required=True)
    c.add_argument("--symbol", required=True)
    c.add_argument("--target-command-id", default=None)
    c.add_argument("--broker-order-id", default=None)
    c.add_argument("--command-id", default=None)
    c.add_argument("--ttl", type=float, default=30.0)
    c.set_defaults(func=cmd_cancel)
    for name, text in (("halt", "kill switch ON: the trader stops placing new orders at once"),
                       ("resume", "kill switch off (signed with MARKETPIPE_ORDER_SIGNING_KEY)")):
        h = osub.add_parser(name, help=text)
        h.add_argument("--reason", default="", help="why (shown in the trader's log)")
        h.set_defaults(func=cmd_halt)
    r = osub.add_parser("resolve", help="settle an unresolved (parked UNKNOWN) command by hand, signed",
                        description="Tell the trader what became of a command it could not reconcile: its broker "
                        "order id (--placed, read from the counter), or that it never reached the counter "
                        "(--not-placed). Until then new commands for its account and symbol are refused "
                        "(rule unresolved_order).")
    r.add_argument("command_id")
    how = r.add_mutually_exclusive_group(required=True)
    how.add_argument("--placed", metavar="BROKER_ORDER_ID", help="the counter's 委托编号 of the command's order")
    how.add_argument("--not-placed", action="store_true", help="the order is not in the counter's order list")
    r.set_defaults(func=cmd_resolve)
