"""Who posts, from where, and the words they use."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .ids import did_plc, hexstr

# Instances the collector listens on (each is an `origin`), and instances whose posts only
# arrive federated through one of them.
LISTENED = ("mastodon.social", "fosstodon.org", "hachyderm.io", "chaos.social", "mstdn.jp")
REMOTE_ONLY = ("social.coop", "infosec.exchange", "toot.community")
HOME_WEIGHTS = {
    "mastodon.social": 30,
    "fosstodon.org": 18,
    "hachyderm.io": 15,
    "chaos.social": 10,
    "mstdn.jp": 9,
    "social.coop": 6,
    "infosec.exchange": 7,
    "toot.community": 5,
}
BLUESKY_HOSTS = ("bsky.social", "bsky.social", "bsky.social", "example.dev", "codeberg.page")

CUSTOM_EMOJI = ("blobaww", "blobcatheart", "ablobattention", "python", "rustacean", "coffeeparrot")

FIRST = (
    "Alex",
    "Sam",
    "Robin",
    "Noor",
    "Femke",
    "Jan",
    "Lotte",
    "Mateo",
    "Ines",
    "Kwame",
    "Aisha",
    "Liam",
    "Sanne",
    "Bram",
    "Chidi",
    "Elif",
    "Marta",
    "Pieter",
    "Yara",
    "Tariq",
    "Zoë",
    "Joost",
    "Hana",
    "Ola",
    "Nikolai",
    "Sofía",
    "Lucía",
    "Anouk",
    "Ravi",
    "Mira",
    "Daan",
    "Emeka",
    "Freya",
    "Gustavo",
    "Ingrid",
    "Jasper",
    "Katarzyna",
    "Lars",
    "Maël",
    "Nadia",
    "Oskar",
    "Paulina",
)
LAST = (
    "de Vries",
    "Jansen",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "Mulder",
    "Bos",
    "Nguyen",
    "Okoye",
    "García",
    "Kowalski",
    "Andersen",
    "Novak",
    "Yilmaz",
    "Haddad",
    "Costa",
    "Müller",
    "O'Brien",
    "Dubois",
    "Rossi",
    "Takahashi",
    "Ivanova",
    "Mensah",
    "Kaur",
    "Lindqvist",
    "Ferreira",
)
NON_LATIN_NAMES = {
    "ja": ("田中 花子", "佐藤 健", "すずき ゆい", "山本 翔太", "ねこ好きエンジニア"),
    "ru": ("Анна Петрова", "Дмитрий Соколов", "Ольга Смирнова"),
    "ar": ("ليلى حداد", "عمر الفاسي", "سارة منصور"),
    "el": ("Γιώργος Παπαδόπουλος", "Ελένη Κωνσταντίνου"),
    "zh": ("王伟", "李娜", "陈晓明"),
    "hi": ("प्रिया शर्मा", "अर्जुन मेहता"),
}
NAME_DECOR = (
    "",
    "",
    "",
    "",
    " 👩‍💻",
    " 🏳️‍🌈",
    " 🇳🇱",
    " ☕",
    " 🦀",
    " 🐍",
    " (she/her)",
    " (they/them)",
    " 🏳️‍⚧️",
    " 👨‍👩‍👧",
)
OTHER_LANGS = ("ru", "ar", "el", "zh", "hi", "de", "nl", "fr", "es", "ja")


@dataclass
class Author:
    key: str
    source: str  # mastodon, bluesky, flickr
    username: str
    home: str  # instance host, PDS host, or "flickr"
    display_name: str
    lang: str
    created_at: datetime
    weight: float = 1.0
    note: str = ""
    noindex: bool = False
    discoverable: bool | None = True
    bot: bool = False
    emojis: tuple[str, ...] = ()
    did: str = ""  # Bluesky
    handle: str = ""  # Bluesky
    nsid: str = ""  # Flickr
    avatar: str = ""
    header: str = ""
    followers: int = 0
    following: int = 0
    statuses: int = 0
    hostile: bool = False
    local_ids: dict[str, str] = field(default_factory=dict)  # instance -> account id there

    @property
    def listened_home(self) -> bool:
        return self.home in LISTENED


def _display_name(rng: random.Random, lang: str) -> str:
    if lang in NON_LATIN_NAMES and rng.random() < 0.7:
        return rng.choice(NON_LATIN_NAMES[lang])
    roll = rng.random()
    if roll < 0.04:
        return ""  # real accounts have empty display names
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}" if roll < 0.75 else rng.choice(FIRST)
    if rng.random() < 0.03:
        name = name.replace(" ", "\u200b ", 1)  # the zero-width space of the real "halcy\u200b"
    return name + rng.choice(NAME_DECOR)


def _username(rng: random.Random, display: str, taken: set[str]) -> str:
    stems = ("dev", "codes", "writes", "ops", "hacks", "py", "rs", "js", "")
    base = "".join(c for c in display.lower() if c.isascii() and c.isalnum()) or "user"
    base = base[: rng.randint(4, 12)]
    while True:
        name = base + rng.choice(stems) + (str(rng.randint(1, 99)) if rng.random() < 0.4 else "")
        if name not in taken:
            taken.add(name)
            return name


def _lang(rng: random.Random, home: str) -> str:
    if home == "mstdn.jp":
        return "ja" if rng.random() < 0.85 else "en"
    if home == "chaos.social" and rng.random() < 0.4:
        return "de"
    return rng.choice(OTHER_LANGS) if rng.random() < 0.2 else "en"


def build_authors(
    rng: random.Random,
    mastodon: int = 300,
    bluesky: int = 62,
    flickr: int = 14,
) -> list[Author]:
    """Every author of the recording, with a Zipf-like weight for how much each one posts."""
    taken: set[str] = set()
    authors: list[Author] = []
    homes = list(HOME_WEIGHTS)
    weights = list(HOME_WEIGHTS.values())
    for i in range(mastodon):
        home = rng.choices(homes, weights)[0]
        lang = _lang(rng, home)
        display = _display_name(rng, lang)
        emojis: tuple[str, ...] = ()
        if rng.random() < 0.05:
            emojis = (rng.choice(CUSTOM_EMOJI),)
            display = f"{display} :{emojis[0]}:".strip()
        authors.append(
            Author(
                key=f"m{i}",
                source="mastodon",
                username=_username(rng, display, taken),
                home=home,
                display_name=display,
                lang=lang,
                created_at=_account_created(rng),
                noindex=rng.random() < 0.05,
                discoverable=rng.choice((True, True, True, False, None)),
                bot=rng.random() < 0.01,
                emojis=emojis,
                note=_note(rng, lang),
            )
        )
    for i in range(bluesky):
        lang = _lang(rng, "bsky")
        display = _display_name(rng, lang)
        user = _username(rng, display, taken)
        handle = f"{user}.{rng.choice(BLUESKY_HOSTS)}"
        authors.append(
            Author(
                key=f"b{i}",
                source="bluesky",
                username=user,
                home="bsky",
                display_name=display,
                lang=lang,
                created_at=_account_created(rng),
                did=did_plc(rng),
                handle=handle,
            )
        )
    for i in range(flickr):
        display = _display_name(rng, "en") or rng.choice(FIRST)
        authors.append(
            Author(
                key=f"f{i}",
                source="flickr",
                username=_username(rng, display, taken),
                home="flickr",
                display_name=display,
                lang="en",
                created_at=_account_created(rng),
                nsid=f"{rng.randint(10000000, 199999999)}@N0{rng.randint(0, 8)}",
            )
        )
    for rank, author in enumerate(sorted(authors, key=lambda a: rng.random())):
        author.weight = 1.0 / (rank % 160 + 1) ** 0.75
        author.avatar = hexstr(rng, 16)
        author.header = hexstr(rng, 16)
        author.followers = int(rng.paretovariate(1.1) * 40)
        author.following = rng.randint(10, 900)
        author.statuses = rng.randint(20, 40000)
    return authors


def _account_created(rng: random.Random) -> datetime:
    start = datetime(2016, 4, 1, tzinfo=UTC)
    return (start + timedelta(days=rng.randint(0, 3600))).replace(hour=0)


def _note(rng: random.Random, lang: str) -> str:
    notes = {
        "ja": "<p>ソフトウェアエンジニア。コーヒーとRustが好き。</p>",
        "ru": "<p>Разработчик, люблю Python и горы.</p>",
        "ar": "<p>مهندسة برمجيات. أحب القهوة والمصادر المفتوحة.</p>",
        "el": "<p>Προγραμματιστής, λάτρης του ανοιχτού λογισμικού.</p>",
        "zh": "<p>写代码的人。开源爱好者。</p>",
        "hi": "<p>सॉफ़्टवेयर डेवलपर। ओपन सोर्स प्रेमी।</p>",
    }
    if lang in notes:
        return notes[lang]
    return rng.choice(
        (
            "<p>Building calm software. Opinions my own.</p>",
            "<p>SRE by day, baker by night 🍞</p>",
            '<p>Maintainer of small things. <a href="https://example.dev" rel="nofollow noopener" '
            'target="_blank"><span class="invisible">https://</span><span class="">example.dev'
            '</span><span class="invisible"></span></a></p>',
            "<p>Accessibility, typography, trains.</p>",
            "",
        )
    )


# Words ----------------------------------------------------------------------------------------

TALK_LINES = (
    "Packed room for “{title}” 🔥",
    "{first}: “{quote}”",
    "Great slides from {first} at {title}",
    "Taking notes at {title}: {point}",
    "Live-posting {title} — thread 🧵",
    "The live demo worked first try?! 👏👏",
    "Q&A for {title}. Really good questions from the audience.",
    "Standing room only in the {room} for {first}",
    "{point} — {first} nailing it",
    "Loving this talk by {first}. {point}",
    "Me, furiously writing down every sentence {first} says 📝",
    "“{quote}” is going on a sticker",
    "{first} on {title}: {point}",
    "Note to self: {point}",
    "Applause break. {title} is so good 🙌",
)
QUOTES = (
    "the best incident is the one that never pages anyone",
    "boring technology is a feature",
    "your users are not edge cases",
    "delete code before you add code",
    "if it isn't tested against the real thing, it isn't tested",
    "caches are just lies we agreed on",
    "a queue is a promise you can't always keep",
    "maintainers are people, not infrastructure",
    "accessibility is not a checkbox",
    "write the runbook before the outage",
)
POINTS = (
    "measure before you optimise",
    "SQLite handles far more than you think",
    "make the default path the accessible one",
    "streams let late readers catch up",
    "type hints are documentation that the computer checks",
    "moderation needs rotation and rest",
    "observability starts with good logs",
    "UTF-8 bytes are not characters",
    "phones are the primary screen for most people",
    "a static site survives any traffic spike",
    "threat models for small teams fit on one page",
    "pipelines need idempotent steps",
)
BREAK_LINES = (
    "Coffee queue is long but the stroopwafels are worth it ☕",
    "Hallway track is the best track",
    "Lunch! 🥗 The soup is excellent",
    "Found a power socket 🔌 small victories",
    "Who else is at {event}? Come say hi by the stairs",
    "Great chats over coffee, my brain is full",
    "The venue is gorgeous, look at that ceiling 😍",
    "Sticker table is dangerous for my laptop lid",
    "Refilling water and energy between talks",
    "Cake! 🍰",
)
MORNING_LINES = (
    "On the train to Amsterdam 🚆 so excited for {event}",
    "Badge collected ✅ see you in the Main Hall",
    "Good morning Amsterdam 🇳🇱 ready for today's talks",
    "Queueing for registration, the line moves fast",
    "First coffee of the day ☕ can't wait for {title}",
)
EVENING_LINES = (
    "Drinks at the canal-side bar, come join us 🍻",
    "What a day. Thank you to everyone who organised this 💜",
    "Still thinking about {title}",
    "Writing up my notes from today, blog post soon",
    "Can't sleep, still buzzing from the talks",
    "Dinner with the speakers' table, wonderful people",
)
FOREIGN_LINES = {
    "ja": (
        "{title}の発表、とても良かった！",
        "会場のコーヒーが美味しい☕",
        "アムステルダムに到着しました🇳🇱",
        "基調講演、メモが追いつかない…",
        "{first}さんの話、すごく参考になる",
    ),
    "ru": (
        "Отличный доклад «{title}»!",
        "Кофе-брейк, наконец-то ☕",
        "Записываю всё подряд, очень полезно",
        "{first} говорит очень разумные вещи",
    ),
    "ar": ("محاضرة رائعة عن {title}", "استراحة القهوة ☕", "شكراً للمنظمين على هذا اليوم الجميل"),
    "el": (
        "Εξαιρετική ομιλία: {title}!",
        "Διάλειμμα για καφέ ☕",
        "Πολύ χρήσιμες σημειώσεις σήμερα",
    ),
    "zh": ("{title}的演讲太精彩了！", "午饭时间🍜", "来阿姆斯特丹参加会议了🇳🇱"),
    "hi": ("{title} पर शानदार प्रस्तुति!", "कॉफ़ी ब्रेक ☕ बहुत भीड़ है", "आज बहुत कुछ सीखा"),
    "de": ("Toller Vortrag von {first}!", "Kaffeepause ☕ endlich", "Sehr gute Folien bei {title}"),
    "nl": ("Wat een mooie zaal, de Zuiderkerk 😍", "Goed verhaal van {first}", "Koffie! ☕"),
    "fr": ("Super présentation de {first} sur {title}", "Pause café ☕", "Très bonne ambiance ici"),
    "es": (
        "¡Gran charla de {first}!",
        "Pausa para el café ☕",
        "Apuntando todo lo que dice {first}",
    ),
}
EMOJI_TAILS = ("", "", "", " 🎉", " 👩‍💻", " 🧑‍🤝‍🧑", " 🏳️‍🌈", " 🇳🇱", " 🇯🇵", " 👍🏽", " ❤️‍🔥", " 🫶")
