"""`boomerang serve`: run the campaign scheduler and the dispatcher until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import typer
import uvicorn

from bot import runtime
from bot.app import App, open_app
from bot.campaign.dispatcher import Dispatcher
from bot.campaign.guard import GuardPolicy
from bot.campaign.loader import LoadedCampaign, load_campaigns
from bot.campaign.scheduler import CampaignScheduler
from bot.channel.base import Channel
from bot.channel.simulated import MIXED_SHOP, SimulatedChannel
from bot.channel.telegram.service import TelegramConfigError, TelegramService
from bot.channel.voice.channel import VoiceChannel
from bot.channel.voice.recognizer import SpeechModel
from bot.channel.voice.service import VoiceService, make_twilio_client
from bot.channel.voice.stream import RecognizerFactory
from bot.channel.voice.vocabulary import grammar_warnings
from bot.dialog.library import Library, load_library
from bot.errors import BoomerangError
from bot.web import web_app

logger = logging.getLogger(__name__)


class ChannelKind(StrEnum):
    simulated = "simulated"
    live = "live"


def load_or_exit(campaigns_dir: Path, dialogs_dir: Path) -> tuple[list[LoadedCampaign], Library]:
    """The campaigns and dialog scripts; any error is printed and exits 1."""
    campaigns = load_campaigns(campaigns_dir)
    library = load_library(dialogs_dir)
    errors = [*campaigns.errors, *library.errors]
    if errors:
        for problem in sorted(errors):
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)
    return campaigns.campaigns, library


def simulated_channels(app: App) -> dict[str, Channel]:
    """Telegram and voice both played by simulated customers of a typical shop (MIXED_SHOP)."""
    now = app.clock.now()
    return {
        name: SimulatedChannel(MIXED_SHOP, seed=1, now=now, name=name)
        for name in ("telegram", "voice")
    }


def serve(
    campaigns_dir: Path = typer.Option(Path("campaigns"), "--campaigns", help="Campaign folder."),
    dialogs_dir: Path = typer.Option(Path("dialogs"), "--dialogs", help="Dialog scripts folder."),
    tick_seconds: float = typer.Option(
        5.0, "--tick-seconds", min=0.1, help="Seconds between dispatcher ticks."
    ),
    channel: ChannelKind = typer.Option(
        ChannelKind.simulated,
        "--channel",
        help=(
            "simulated: customers played by personas; live: Telegram (with "
            "BOOMERANG_TELEGRAM_TOKEN) and voice calls (with BOOMERANG_TWILIO_ACCOUNT_SID)."
        ),
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Webhook server address."),
    port: int = typer.Option(8080, "--port", help="Webhook server port."),
) -> None:
    """Plan campaign runs on their schedule and send due outreach, until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # APScheduler logs each job run at INFO: a line per tick is noise; our jobs log what they did.
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    campaigns, library = load_or_exit(campaigns_dir, dialogs_dir)
    app = open_app()
    try:
        telegram: TelegramService | None = None
        voice: Voice | None = None
        channels: dict[str, Channel] = {}
        if channel == ChannelKind.live:
            settings = app.settings
            if not settings.telegram_token and not settings.twilio_account_sid:
                typer.echo(
                    "error: --channel live needs BOOMERANG_TELEGRAM_TOKEN (Telegram) and/or "
                    "BOOMERANG_TWILIO_ACCOUNT_SID (voice calls)",
                    err=True,
                )
                raise typer.Exit(2)
            if settings.telegram_token:
                telegram = _telegram_or_exit(app, library)
                channels["telegram"] = telegram.channel
            if settings.twilio_account_sid:
                voice = _voice_or_exit(app, library, campaigns)
                channels["voice"] = voice.channel
        else:
            channels = simulated_channels(app)
        dispatcher = Dispatcher(
            app,
            {c.campaign.id: c for c in campaigns},
            library,
            channels,
            GuardPolicy(),
            worker_id=f"{socket.gethostname()}:{os.getpid()}",
        )
        scheduler = CampaignScheduler(app, campaigns, dispatcher, tick_seconds=tick_seconds)
        typer.echo(
            f"serving {len(scheduler.campaigns)} campaigns on "
            f"{app.engine.url.render_as_string()} with the {channel.value} channels "
            f"({', '.join(sorted(channels))}); SIGTERM or Ctrl-C stops"
        )
        library.compile_words()
        runtime.run(_run(scheduler, telegram, voice, host, port))
    finally:
        app.engine.dispose()
    typer.echo("stopped")


@dataclass(frozen=True)
class Voice:
    service: VoiceService
    channel: VoiceChannel
    recognizer_for: RecognizerFactory


def _voice_or_exit(app: App, library: Library, campaigns: list[LoadedCampaign]) -> Voice:
    """The voice channel: Twilio's client and the speech model; a missing setting exits 2."""
    settings = app.settings
    needed = {
        "BOOMERANG_TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
        "BOOMERANG_VOICE_CALLER_ID": settings.voice_caller_id,
        "BOOMERANG_PUBLIC_URL": settings.public_url,
        "BOOMERANG_VOSK_MODEL": settings.vosk_model,
    }
    missing = [name for name, value in needed.items() if not value]
    if missing:
        typer.echo(f"error: voice calls need {', '.join(missing)} (docs/voice.md)", err=True)
        raise typer.Exit(2)
    assert settings.vosk_model is not None
    try:
        model = SpeechModel.load(settings.vosk_model)
    except BoomerangError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    for problem in grammar_warnings(library, model):
        logger.warning("voice: %s", problem)  # phrases the model cannot hear: docs/voice.md
    service = VoiceService(
        app, library, {c.campaign.id: c for c in campaigns}, make_twilio_client(settings)
    )
    return Voice(service, VoiceChannel(service), lambda phrases: model.recognizer(phrases))


def _telegram_or_exit(app: App, library: Library) -> TelegramService:
    """The Telegram service; a setting that does not allow it is printed and exits 2."""
    try:
        service = TelegramService.from_settings(app, library)
        if app.settings.telegram_mode == "webhook":
            service.check_webhook_settings()
    except TelegramConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    return service


async def _run(
    scheduler: CampaignScheduler,
    telegram: TelegramService | None,
    voice: Voice | None,
    host: str,
    port: int,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    background: list[asyncio.Task[None]] = []
    server: uvicorn.Server | None = None
    webhook = telegram is not None and telegram.app.settings.telegram_mode == "webhook"
    if telegram is not None:
        await telegram.recover()
        if webhook:
            await telegram.set_webhook()
        else:
            background.append(asyncio.create_task(telegram.poll(stop)))
        background.append(asyncio.create_task(telegram.housekeeping(stop)))
    if voice is not None:
        background.append(asyncio.create_task(voice.service.housekeeping(stop)))
    if webhook or voice is not None:
        api = web_app(
            telegram if webhook else None,
            voice.service if voice is not None else None,
            voice.recognizer_for if voice is not None else None,
        )
        server = uvicorn.Server(uvicorn.Config(api, host=host, port=port, log_level="info"))
        background.append(asyncio.create_task(server.serve()))
    scheduler.start()
    await stop.wait()
    logger.info("serve: stopping")
    await scheduler.shutdown()
    if server is not None:
        server.should_exit = True
    for task in background:
        if not task.done() and server is None:
            task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    if telegram is not None:
        await telegram.close()
