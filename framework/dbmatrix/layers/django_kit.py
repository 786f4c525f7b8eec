"""The ``orm.*`` schema and operations written the Django way (models with ``Meta.db_table``, the schema editor,
managers and querysets, ``transaction.atomic()``, ``select_for_update``, ``bulk_create(update_conflicts=True)``,
``F()``, ``Window``), over a ``django+<dbapi>`` session.

The models live in a model registry of their own per kit (``Meta.apps``), so each cell declares its tables without
touching Django's global one. Every operation runs on the session's owner thread, where the session's wrapper is
``connections['default']``. ``USE_TZ`` is the one time-zone switch Django has (no per-field flag): the operations on
``f_datetime_aware`` run with it on, those on ``f_datetime_naive`` with it off (``override_settings``, the documented
way to change a setting at run time).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from ..drivers.base import Session
from .ormkit import DECIMAL_DIGITS, DECIMAL_PLACES, Colour, OrmKit, unsupported

# the field each datetime column stands for -> USE_TZ while it is saved and read
_USE_TZ = {"f_datetime_aware": True, "f_datetime_naive": False}
_LOCKS = {"plain": {}, "skip_locked": {"skip_locked": True}, "nowait": {"nowait": True}}


def _models(prefix_table: Callable[[str], str], postgres: bool) -> tuple[Any, ...]:
    from django.apps.registry import Apps
    from django.db import models

    registry = Apps(installed_apps=())  # a registry of the kit's own (Meta.apps), ready at once
    choices = models.TextChoices("Colour", [(c.name, c.value) for c in Colour])

    def meta(name: str) -> type:
        return type("Meta", (), {"apps": registry, "app_label": "dbmatrix_orm", "db_table": prefix_table(name)})

    thing_fields: dict[str, Any] = {
        "__module__": __name__, "Meta": meta("things"),
        "name": models.CharField(max_length=40, unique=True, null=True),
        "n": models.IntegerField(null=True),
        "f_json": models.JSONField(null=True),
        "f_uuid": models.UUIDField(null=True),
        "f_decimal": models.DecimalField(max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True),
        "f_datetime_aware": models.DateTimeField(null=True),  # one DateTimeField: USE_TZ decides (see above)
        "f_datetime_naive": models.DateTimeField(null=True),
        "f_bool": models.BooleanField(null=True),
        "f_bytes": models.BinaryField(null=True),
        "f_bigint": models.BigIntegerField(null=True),
        "f_enum": models.CharField(max_length=10, choices=choices.choices, null=True),
    }
    if postgres:  # django.contrib.postgres: PostgreSQL only
        from django.contrib.postgres.fields import ArrayField

        thing_fields["f_array"] = ArrayField(models.IntegerField(), null=True)
    Thing = type("Thing", (models.Model,), thing_fields)
    Author = type("Author", (models.Model,), {"__module__": __name__, "Meta": meta("authors"),
                                              "name": models.CharField(max_length=40)})
    Book = type("Book", (models.Model,), {"__module__": __name__, "Meta": meta("books"),
                                          "title": models.CharField(max_length=40),
                                          "author": models.ForeignKey(Author, on_delete=models.CASCADE)})
    Account = type("Account", (models.Model,), {"__module__": __name__, "Meta": meta("accounts"),
                                                "balance": models.IntegerField()})
    return choices, Thing, Author, Book, Account


class DjangoKit(OrmKit):
    orm = "django"
    pooler_fixes = {  # noqa: RUF012
        "DISABLE_SERVER_SIDE_CURSORS": "DATABASES['default']['DISABLE_SERVER_SIDE_CURSORS'] = True (QuerySet."
                                       "iterator() then reads the whole result client-side: no DECLARE ... WITH HOLD "
                                       "cursor that the next transaction's server connection does not have)",
    }

    def __init__(self, session: Session, prefix: str):
        super().__init__(session, prefix)
        from django.db import transaction

        self.transaction = transaction
        self.wrapper = session.django  # type: ignore[attr-defined]
        self.kind = session.info.kind
        self.Colour, self.Thing, self.Author, self.Book, self.Account = self.run(
            lambda: _models(self.table, self.kind == "postgresql"))
        self._atomic: Any = None
        self._account: Any = None

    def _op(self, fn: Callable[[], Any]) -> Any:
        def op() -> Any:
            self.wrapper.bind()  # the owner's connections['default'] (again, should anything have reset the handler)
            return fn()

        return op

    # --- Django's transaction at its defaults: an atomic block left open until ``end`` -----------------------------
    def _open(self) -> None:
        self._atomic = self.transaction.atomic()
        self._atomic.__enter__()

    def end(self, commit: bool) -> None:
        self.run(lambda: self.end_now(commit))

    def end_now(self, commit: bool) -> None:
        """``end`` inside an owner operation."""
        block, self._atomic = self._atomic, None
        if block is not None:
            if not commit:
                self.transaction.set_rollback(True)  # Django's way to roll back an atomic block without raising
            block.__exit__(None, None, None)

    @contextlib.contextmanager
    def _time_zone(self, field: str) -> Iterator[None]:
        use_tz = _USE_TZ.get(self.column(field))
        if use_tz is None:
            yield
            return
        from django.test.utils import override_settings

        with override_settings(USE_TZ=use_tz):
            yield

    # --- the operations -----------------------------------------------------------------------------------
    def create_schema(self) -> None:
        def create() -> None:
            with self.wrapper.schema_editor() as editor:
                for model in (self.Thing, self.Author, self.Book, self.Account):
                    editor.create_model(model)

        self.run(create)

    def _check_field(self, field: str) -> None:
        if field == "array" and self.kind != "postgresql":
            raise unsupported(self.orm, "ArrayField is in django.contrib.postgres: PostgreSQL only")

    def save_field(self, field: str, value: Any) -> Any:
        self._check_field(field)
        if field == "enum":
            value = self.Colour(value)  # the TextChoices member, as a Django user assigns it

        def save() -> Any:
            with self._time_zone(field):
                return self.Thing.objects.create(**{self.column(field): value}).pk

        return self.run(save)

    def load_field(self, pk: Any, field: str) -> Any:
        self._check_field(field)

        def load() -> Any:
            with self._time_zone(field):
                return getattr(self.Thing.objects.get(pk=pk), self.column(field))

        return self.run(load)

    def bulk_insert(self, names: list[str]) -> tuple[list[Any], str]:
        def insert() -> list[Any]:
            things = self.Thing.objects.bulk_create([self.Thing(name=name) for name in names])
            return [t.pk for t in things]

        return self.run(insert), "Thing.objects.bulk_create(objects)"

    def upsert(self, name: str, n: int) -> str:
        # MySQL's ON DUPLICATE KEY UPDATE takes no conflict target: Django refuses unique_fields there
        target = {} if self.kind == "mysql" else {"unique_fields": ["name"]}
        call = (f"Thing.objects.bulk_create([Thing(name=..., n=...)], update_conflicts=True, "
                f"{'unique_fields=[name], ' if target else ''}update_fields=[n])")
        self.run(lambda: self.Thing.objects.bulk_create([self.Thing(name=name, n=n)], update_conflicts=True,
                                                        update_fields=["n"], **target))
        return call

    def lock_step(self, mode: str) -> tuple[Callable[[], Any], str]:
        options = _LOCKS[mode]
        call = f"select_for_update({', '.join(f'{k}=True' for k in options)})"

        def step() -> list[Any]:
            self._open()
            query = self.Thing.objects.select_for_update(**options)
            query = query.order_by("id")[:1] if mode == "skip_locked" else query.filter(pk=1)
            return [t.pk for t in query]

        return step, f"Thing.objects.{call} in transaction.atomic()"

    def nested(self) -> tuple[list[str], str]:
        def work() -> list[str]:
            with self.transaction.atomic():
                self.Thing.objects.create(name="outer")
                with self.transaction.atomic():
                    self.Thing.objects.create(name="inner")
                    self.transaction.set_rollback(True)
            return list(self.Thing.objects.order_by("id").values_list("name", flat=True))

        return self.run(work), "transaction.atomic() inside transaction.atomic(), set_rollback(True) in the inner"

    def seed_books(self, n: int) -> None:
        def seed() -> None:
            with self.transaction.atomic():
                for i in range(n):
                    self.Book.objects.create(title=f"book {i}", author=self.Author.objects.create(name=f"author {i}"))

        self.run(seed)

    def books_with_authors(self, eager: bool) -> tuple[list[tuple[str, str]], str]:
        books = self.Book.objects.order_by("id")
        if eager:
            books, call = books.select_related("author"), "Book.objects.select_related('author')"
        else:
            call = "Book.objects.all(), then book.author per book"
        return self.run(lambda: [(b.title, b.author.name) for b in books]), call

    def count_statements(self) -> None:
        self.statements = 0

        def count() -> None:
            self.statements += 1

        self.wrapper.count = count  # at the DBAPI cursor under Django's CursorWrapper (django_layer._CountingCursor)

    def seed_account(self, balance: int) -> int:
        return self.run(lambda: self.Account.objects.create(balance=balance).pk)

    def read_balance(self, pk: int) -> int:
        def read() -> int:
            self._open()
            self._account = self.Account.objects.get(pk=pk)
            return int(self._account.balance)

        return self.run(read)

    def save_balance(self, pk: int, balance: int) -> None:
        def save() -> None:
            self._account.balance = balance
            self._account.save()

        self.run(save)
        self.end(True)

    def add_atomic(self, pk: int, amount: int) -> tuple[Callable[[], Any], str]:
        from django.db.models import F

        def add() -> None:
            self._open()
            self.Account.objects.filter(pk=pk).update(balance=F("balance") + amount)

        return add, "Account.objects.filter(pk=...).update(balance=F('balance') + 100)"

    # --- the second set ---------------------------------------------------------------------------------------
    def update_returning(self, ids: list[int], add: int) -> tuple[list[tuple[int, int]], str]:
        raise unsupported(self.orm, "no UPDATE ... RETURNING API: QuerySet.update() returns the number of rows "
                                    "matched, not the rows")

    def isolated_read(self, level: str, probe: Callable[[], Any]) -> tuple[Any, str]:
        if self.kind == "sqlite":
            if level != "serializable":  # SQLite's own level; Django's SQLite backend has no isolation option
                raise unsupported(self.orm, f"the SQLite backend has no isolation_level option ({level!r}): SQLite "
                                            "transactions are serializable, OPTIONS transaction_mode only picks "
                                            "DEFERRED/IMMEDIATE/EXCLUSIVE")
            option, call = None, "transaction.atomic() (SQLite: a DEFERRED transaction, serializable)"
        else:
            if self.kind == "postgresql":
                from django.db.backends.postgresql.psycopg_any import IsolationLevel

                option = IsolationLevel[level.upper().replace(" ", "_")]
                shown = f"IsolationLevel.{option.name}"
            else:
                option, shown = level, repr(level)
            call = (f"DATABASES['default']['OPTIONS']['isolation_level'] = {shown} (applied when Django connects), "
                    "then transaction.atomic()")
        saved = self.wrapper.settings_dict["OPTIONS"].get("isolation_level")

        def restore() -> None:
            options = dict(self.wrapper.settings_dict["OPTIONS"])
            options.pop("isolation_level", None)
            if saved is not None:
                options["isolation_level"] = saved
            self.wrapper.settings_dict["OPTIONS"] = options
            self.wrapper.reconnect()

        def begin() -> None:
            if option is not None:
                self.wrapper.reconnect(OPTIONS={"isolation_level": option})
            try:
                self._open()
            except BaseException:
                if option is not None:
                    restore()
                raise

        def finish() -> None:
            try:
                self.end_now(True)  # the probe only read
            finally:
                if option is not None:
                    restore()

        self.run(begin)
        try:
            return probe(), call
        finally:
            self.run(finish)

    def json_filter(self, key: str, value: Any) -> tuple[list[int], str]:
        def ids() -> list[int]:
            return list(self.Thing.objects.filter(**{f"f_json__{key}": value}).order_by("id")
                        .values_list("id", flat=True))

        return self.run(ids), f"Thing.objects.filter(f_json__{key}=...)"

    def window(self) -> tuple[list[tuple[str, int]], str]:
        from django.db.models import F, Sum, Window

        def rows() -> list[tuple[str, int]]:
            query = self.Thing.objects.annotate(running=Window(Sum("n"), order_by=F("id").asc())).order_by("id")
            return [(t.name, t.running) for t in query]

        return self.run(rows), "Thing.objects.annotate(running=Window(Sum('n'), order_by=F('id').asc()))"

    def cte(self, min_n: int) -> tuple[list[str], str]:
        raise unsupported(self.orm, "no common table expression API in Django's ORM (QuerySet has no WITH; the "
                                    "third-party django-cte adds one)")

    def with_fix(self, name: str) -> None:
        if name not in self.pooler_fixes:
            raise KeyError(name)
        self.run(lambda: self.wrapper.reconnect(**{name: True}))

    def pooled_work(self, rounds: int) -> str:
        Thing, transaction = self.Thing, self.transaction

        def work() -> None:
            for i in range(rounds):
                thing = Thing.objects.create(name=f"pool {uuid.uuid4().hex[:20]}", n=i)
                Thing.objects.get(pk=thing.pk)
                list(Thing.objects.filter(n__gte=0, pk=thing.pk))
                for _ in Thing.objects.order_by("id").iterator(chunk_size=100):
                    pass
                with transaction.atomic():
                    thing.n = i + 1
                    thing.save()

        self.run(work)
        return ("Thing.objects.create(...), get(pk=...), filter(...), order_by('id').iterator(chunk_size=100) "
                "(a server-side cursor on PostgreSQL unless DISABLE_SERVER_SIDE_CURSORS), save() in "
                "transaction.atomic()")
