"""The ``orm.*`` schema and operations written the Tortoise way (``tortoise.models.Model`` with ``Meta.table``,
``in_transaction()``, ``bulk_create``, ``select_for_update``, ``select_related``, ``F`` expressions), over a
``tortoise+<dbapi>`` session, each kit in a ``TortoiseContext`` of its own.

Where Tortoise has no API (checked in its source, 1.1): no UPDATE ... RETURNING (``QuerySet.update()`` returns a row
count), no isolation level on ``in_transaction()`` (it takes a connection name only), no window function (its
``tortoise.functions`` are scalar functions and aggregates) and no CTE (``QuerySet`` does not expose the ``with_()``
of pypika-tortoise under it); ``ArrayField`` is PostgreSQL-only
(``tortoise.contrib.postgres.fields``); the JSON ``__filter`` lookup has no SQLite implementation.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable
from typing import Any

from ..drivers.base import Session
from .async_orm import AsyncOrmKit, reconnect
from .ormkit import DECIMAL_DIGITS, DECIMAL_PLACES, Colour, unsupported
from .tortoise_layer import TORTOISE_ADAPTERS

# the fields whose round trip runs with Tortoise's use_tz off (the naive field, an aware value into it); else on
NO_TZ_FIELDS = ("datetime_naive", "datetime_aware_notz")


def _models(table_of: Callable[[str], str], postgres: bool) -> types.ModuleType:
    from tortoise import fields, models

    class Thing(models.Model):
        id = fields.IntField(primary_key=True)
        name = fields.CharField(max_length=40, unique=True, null=True)
        n = fields.IntField(null=True)
        f_json = fields.JSONField(null=True)
        f_uuid = fields.UUIDField(null=True)
        f_decimal = fields.DecimalField(max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True)
        f_datetime_aware = fields.DatetimeField(null=True)  # one DatetimeField: the time zone is use_tz
        f_datetime_naive = fields.DatetimeField(null=True)
        f_bool = fields.BooleanField(null=True)
        f_bytes = fields.BinaryField(null=True)
        f_bigint = fields.BigIntField(null=True)
        f_enum = fields.CharEnumField(Colour, max_length=10, null=True)
        if postgres:
            from tortoise.contrib.postgres.fields import ArrayField

            f_array = ArrayField("int", null=True)

        class Meta:
            table = table_of("things")

    class Author(models.Model):
        id = fields.IntField(primary_key=True)
        name = fields.CharField(max_length=40)

        class Meta:
            table = table_of("authors")

    class Book(models.Model):
        id = fields.IntField(primary_key=True)
        title = fields.CharField(max_length=40)
        author = fields.ForeignKeyField("models.Author", related_name="books")

        class Meta:
            table = table_of("books")

    class Account(models.Model):
        id = fields.IntField(primary_key=True)
        balance = fields.IntField()

        class Meta:
            table = table_of("accounts")

    module = types.ModuleType(f"dbm_tortoise_{table_of('models')}")
    for model in (Thing, Author, Book, Account):
        model.__module__ = module.__name__
        setattr(module, model.__name__, model)
    sys.modules[module.__name__] = module  # Tortoise's app config names model modules (non-empty strings)
    return module


class TortoiseKit(AsyncOrmKit):
    orm = "tortoise"

    def __init__(self, session: Session, prefix: str):
        super().__init__(session, prefix)
        from tortoise.context import TortoiseContext

        self.kind = session.info.kind
        self.module = _models(self.table, self.kind in ("postgresql", "cockroachdb"))
        self.Thing, self.Author, self.Book, self.Account = (
            self.module.Thing, self.module.Author, self.module.Book, self.module.Account)
        self.ctx = TortoiseContext()
        self.use_tz = True  # Tortoise's default
        self.alias = session.adapter.tortoise_alias(session)  # type: ignore[attr-defined]
        self._txn: Any = None  # (the in_transaction() context, its client) left open by an operation
        self._account: Any = None
        self.session._do(self._op(self._init))

    async def _init(self) -> None:
        config = self.session.adapter.tortoise_config(self.session, self.module.__name__)  # type: ignore
        await self.ctx.init(config=config, use_tz=self.use_tz)

    async def _inside(self, fn: Callable[[], Any]) -> Any:
        from tortoise.context import _current_context
        from tortoise.timezone import _reset_timezone_cache, get_use_tz

        if get_use_tz() != self.use_tz:  # process-wide in Tortoise: the value this kit's operation declares
            os.environ["USE_TZ"] = str(self.use_tz)
            _reset_timezone_cache()
        token = _current_context.set(self.ctx)
        sqlite = self.kind == "sqlite"
        if sqlite:
            TORTOISE_ADAPTERS.hold()  # Tortoise's sqlite3 adapters bind this operation's values only
        try:
            return await fn()
        finally:
            if sqlite:
                TORTOISE_ADAPTERS.release()
            _current_context.reset(token)

    # --- transactions left open across operations --------------------------------------------------------------
    async def _open(self) -> Any:
        from tortoise.transactions import in_transaction

        manager = in_transaction(self.alias)
        self._txn = (manager, await manager.__aenter__())
        return self._txn[1]

    def end(self, commit: bool) -> None:
        async def finish() -> None:
            txn, self._txn = self._txn, None
            if txn is not None:  # leaving the block normally commits; with an exception it rolls back
                failed = (None, None, None) if commit else (RuntimeError, RuntimeError("rolled back"), None)
                await txn[0].__aexit__(*failed)

        self.run(finish)

    # --- the operations -----------------------------------------------------------------------------------
    def create_schema(self) -> None:
        self.run(lambda: self.ctx.generate_schemas(safe=False))

    def _field_tz(self, field: str) -> None:
        self.use_tz = field not in NO_TZ_FIELDS

    def save_field(self, field: str, value: Any) -> Any:
        column = self.column(field)
        if field == "array" and "f_array" not in self.Thing._meta.fields_map:
            raise unsupported(self.orm, f"no array field on {self.kind}: ArrayField is tortoise.contrib.postgres "
                              "only (PostgreSQL arrays)")
        self._field_tz(field)

        async def save() -> Any:
            return (await self.Thing.create(**{column: value})).id

        return self.run(save)

    def load_field(self, pk: Any, field: str) -> Any:
        self._field_tz(field)

        async def load() -> Any:
            return getattr(await self.Thing.get(id=pk), self.column(field))

        return self.run(load)

    def bulk_insert(self, names: list[str]) -> tuple[list[Any], str]:
        async def insert() -> list[Any]:
            things = [self.Thing(name=name) for name in names]
            await self.Thing.bulk_create(things)
            return [t.id for t in things]

        return self.run(insert), "Thing.bulk_create(objects)"

    def upsert(self, name: str, n: int) -> str:
        async def upsert() -> None:
            await self.Thing.bulk_create([self.Thing(name=name, n=n)], on_conflict=["name"], update_fields=["n"])

        self.run(upsert)
        return "Thing.bulk_create([obj], on_conflict=['name'], update_fields=['n'])"

    def lock_step(self, mode: str) -> tuple[Callable[[], Any], str]:
        Thing = self.Thing
        call = {"plain": "select_for_update()", "skip_locked": "select_for_update(skip_locked=True)",
                "nowait": "select_for_update(nowait=True)"}[mode]

        async def step() -> list[Any]:
            await self._open()
            if mode == "skip_locked":
                query = Thing.all().order_by("id").limit(1).select_for_update(skip_locked=True)
            else:
                query = Thing.filter(id=1).select_for_update(nowait=mode == "nowait")
            return [t.id for t in await query]

        return step, f"Thing.filter(...).{call} in in_transaction()"

    def nested(self) -> tuple[list[str], str]:
        from tortoise.transactions import in_transaction

        class Inner(Exception):
            pass

        async def work() -> list[str]:
            async with in_transaction(self.alias):
                await self.Thing.create(name="outer")
                try:
                    async with in_transaction(self.alias):
                        await self.Thing.create(name="inner")
                        raise Inner
                except Inner:
                    pass
            return [t.name for t in await self.Thing.all().order_by("id")]

        return self.run(work), "in_transaction() inside in_transaction(), the inner block raising"

    def seed_books(self, n: int) -> None:
        from tortoise.transactions import in_transaction

        async def seed() -> None:
            async with in_transaction(self.alias):
                for i in range(n):
                    author = await self.Author.create(name=f"author {i}")
                    await self.Book.create(title=f"book {i}", author=author)

        self.run(seed)

    def books_with_authors(self, eager: bool) -> tuple[list[tuple[str, str]], str]:
        Book = self.Book

        async def read() -> list[tuple[str, str]]:
            if eager:
                return [(b.title, b.author.name) for b in await Book.all().order_by("id").select_related("author")]
            return [(b.title, (await b.author).name) for b in await Book.all().order_by("id")]

        call = ("Book.all().select_related('author')" if eager
                else "Book.all(), then await book.author per book (Tortoise loads no relation implicitly)")
        return self.run(read), call

    def seed_account(self, balance: int) -> int:
        async def seed() -> int:
            return (await self.Account.create(balance=balance)).id

        return self.run(seed)

    def read_balance(self, pk: int) -> int:
        async def read() -> int:
            await self._open()
            self._account = await self.Account.get(id=pk)
            return int(self._account.balance)

        return self.run(read)

    def save_balance(self, pk: int, balance: int) -> None:
        async def save() -> None:
            self._account.balance = balance
            await self._account.save()

        self.run(save)
        self.end(True)

    def add_atomic(self, pk: int, amount: int) -> tuple[Callable[[], Any], str]:
        from tortoise.expressions import F

        async def add() -> None:
            await self._open()
            await self.Account.filter(id=pk).update(balance=F("balance") + amount)

        return add, "Account.filter(id=pk).update(balance=F('balance') + 100)"

    # --- the second set ----------------------------------------------------------------------------------------
    def update_returning(self, ids: list[int], add: int) -> tuple[list[tuple[int, int]], str]:
        raise unsupported(self.orm, "no UPDATE ... RETURNING API: QuerySet.update() returns the number of rows")

    def isolated_read(self, level: str, probe: Any) -> tuple[Any, str]:
        raise unsupported(self.orm, "no way to ask for an isolation level: in_transaction() and @atomic() take a "
                          "connection name only")

    def json_filter(self, key: str, value: Any) -> tuple[list[int], str]:
        call = f"Thing.filter(f_json__filter={{{key!r}: {value!r}}})"

        async def find() -> list[int]:
            try:
                query = self.Thing.filter(f_json__filter={key: value}).order_by("id").values_list("id", flat=True)
                return sorted(await query)
            except NotImplementedError as exc:  # the executor of this engine has no JSON filter
                raise unsupported(self.orm, f"{call}: {exc} (no JSON key lookup for {self.kind})") from None

        return self.run(find), call

    def window(self) -> tuple[list[tuple[str, int]], str]:
        raise unsupported(self.orm, "no window function API: tortoise.functions has scalar functions and "
                          "aggregates only (RawSQL is raw SQL)")

    def cte(self, min_n: int) -> tuple[list[str], str]:
        raise unsupported(self.orm, "no common table expression (WITH) API: its QuerySet does not expose the "
                          "with_() of the builder under it (pypika-tortoise)")

    @property
    def pooler_fixes(self) -> dict[str, str]:  # type: ignore[override]
        if self.session.adapter.under.id != "asyncpg":
            return {}
        return {"statement_cache_size=0": "credentials {'statement_cache_size': 0}: Tortoise passes extra "
                "credentials to asyncpg.create_pool, and asyncpg then prepares no named statement it reuses"}

    def with_fix(self, name: str) -> None:
        if name not in self.pooler_fixes:
            raise unsupported(self.orm, f"no pooler fix {name!r} on {self.session.adapter.under.id}")
        reconnect(self.session, {"statement_cache_size": 0})
        self.ctx = type(self.ctx)()
        self.session._do(self._op(self._init))

    def pooled_work(self, rounds: int) -> str:
        from tortoise.transactions import in_transaction

        async def work() -> None:
            for i in range(rounds):
                thing = await self.Thing.create(name=f"pooled {id(self)} {i}", n=i)
                await self.Thing.get(id=thing.id)
                await self.Thing.filter(n__gte=0).limit(5)
                async for _ in self.Thing.filter(n__gte=0).limit(5):  # Tortoise has no streaming cursor
                    pass
                async with in_transaction(self.alias):
                    thing.n = i + 1
                    await thing.save()

        self.run(work)
        return ("Thing.create, Thing.get(id=...), Thing.filter(...), async for over a QuerySet (fetched whole: no "
                "server-side cursor API), obj.save() in in_transaction()")

