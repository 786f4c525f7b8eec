"""The ``orm.*`` schema and operations written the Peewee way (models with ``Meta.table_name``, ``db.atomic()``,
``insert_many(...).returning``, ``on_conflict``, ``for_update``, joins), over a ``peewee+<dbapi>`` session."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..drivers.base import Session
from .ormkit import DECIMAL_DIGITS, DECIMAL_PLACES, OrmKit, unsupported


class _CountingCursor:
    """A DBAPI cursor that counts its ``execute`` calls on the kit (the statements the driver sent)."""

    def __init__(self, cursor: Any, kit: PeeweeKit):
        self._cursor, self._kit = cursor, kit

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._kit.statements += 1
        return self._cursor.execute(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class PeeweeKit(OrmKit):
    orm = "peewee"

    def __init__(self, session: Session, prefix: str):
        super().__init__(session, prefix)
        import peewee as pw

        self.pw = pw
        self.db = db = session.peewee  # type: ignore[attr-defined]
        table = self.table

        class Base(pw.Model):
            class Meta:
                database = db
                legacy_table_names = False  # index names from the table's name (unique per cell), not the class's

        class Thing(Base):
            name = pw.CharField(max_length=40, unique=True, null=True)
            n = pw.IntegerField(null=True)
            f_json = pw.JSONField(null=True)
            f_uuid = pw.UUIDField(null=True)
            f_decimal = pw.DecimalField(max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True)
            f_datetime_aware = pw.DateTimeField(null=True)  # Peewee's one DateTimeField: no time-zone flag
            f_datetime_naive = pw.DateTimeField(null=True)
            f_bool = pw.BooleanField(null=True)
            f_bytes = pw.BlobField(null=True)
            f_bigint = pw.BigIntegerField(null=True)

            class Meta:
                table_name = table("things")

        class Author(Base):
            name = pw.CharField(max_length=40)

            class Meta:
                table_name = table("authors")

        class Book(Base):
            title = pw.CharField(max_length=40)
            author = pw.ForeignKeyField(Author, backref="books")

            class Meta:
                table_name = table("books")

        class Account(Base):
            balance = pw.IntegerField()

            class Meta:
                table_name = table("accounts")

        self.Thing, self.Author, self.Book, self.Account = Thing, Author, Book, Account
        self._txn: Any = None
        self._account: Any = None

    def create_schema(self) -> None:
        self.run(lambda: self.db.create_tables([self.Thing, self.Author, self.Book, self.Account]))

    def save_field(self, field: str, value: Any) -> Any:
        return self.run(lambda: self.Thing.create(**{self.column(field): value}).id)

    def load_field(self, pk: Any, field: str) -> Any:
        return self.run(lambda: getattr(self.Thing.get_by_id(pk), self.column(field)))

    def bulk_insert(self, names: list[str]) -> tuple[list[Any], str]:
        def insert() -> list[Any]:
            things = [self.Thing(name=name) for name in names]
            with self.db.atomic():
                self.Thing.bulk_create(things)
            return [t.id for t in things]

        return self.run(insert), "Thing.bulk_create(objects)"

    def upsert(self, name: str, n: int) -> str:
        mysql = self.session.info.kind == "mysql"  # Peewee refuses a conflict target on MySQL (ON DUPLICATE KEY)
        target = {} if mysql else {"conflict_target": [self.Thing.name]}
        call = f"Thing.insert(...).on_conflict({'' if mysql else 'conflict_target=[Thing.name], '}update=...)"
        self.run(lambda: self.Thing.insert(name=name, n=n).on_conflict(update={self.Thing.n: n}, **target).execute())
        return call

    def lock_step(self, mode: str) -> tuple[Callable[[], Any], str]:
        Thing = self.Thing
        query = {"plain": Thing.select().where(Thing.id == 1).for_update(),
                 "skip_locked": Thing.select().order_by(Thing.id).limit(1).for_update(skip_locked=True),
                 "nowait": Thing.select().where(Thing.id == 1).for_update(nowait=True)}[mode]
        call = {"plain": "for_update()", "skip_locked": "for_update(skip_locked=True)",
                "nowait": "for_update(nowait=True)"}[mode]
        try:
            query.sql()
        except ValueError as exc:  # e.g. SQLite: Peewee refuses to build FOR UPDATE
            raise unsupported(self.orm, f"{call}: {exc}") from None

        def step() -> list[Any]:
            self._open()
            return [t.id for t in query]

        return step, f"Thing.select()...{call}"

    def _open(self) -> None:
        self._txn = self.db.atomic()  # Peewee's transaction at its defaults (the server's level)
        self._txn.__enter__()

    def end(self, commit: bool) -> None:
        def finish() -> None:
            txn, self._txn = self._txn, None
            if txn is not None:  # leaving the atomic block normally commits; with an exception it rolls back
                failed = (None, None, None) if commit else (RuntimeError, RuntimeError("rolled back"), None)
                txn.__exit__(*failed)

        self.run(finish)

    def nested(self) -> tuple[list[str], str]:
        def work() -> list[str]:
            with self.db.atomic():
                self.Thing.create(name="outer")
                with self.db.atomic() as inner:
                    self.Thing.create(name="inner")
                    inner.rollback()
            return [t.name for t in self.Thing.select().order_by(self.Thing.id)]

        return self.run(work), "db.atomic() inside db.atomic(), inner.rollback()"

    def seed_books(self, n: int) -> None:
        def seed() -> None:
            with self.db.atomic():
                for i in range(n):
                    author = self.Author.create(name=f"author {i}")
                    self.Book.create(title=f"book {i}", author=author)

        self.run(seed)

    def books_with_authors(self, eager: bool) -> tuple[list[tuple[str, str]], str]:
        Book, Author = self.Book, self.Author
        if eager:
            query = Book.select(Book, Author).join(Author).order_by(Book.id)
            call = "Book.select(Book, Author).join(Author)"
        else:
            query, call = Book.select().order_by(Book.id), "Book.select(), then book.author per book"
        return self.run(lambda: [(b.title, b.author.name) for b in query]), call

    def count_statements(self) -> None:
        self.statements = 0
        cursor = type(self.db).cursor

        def counting(*args: Any, **kwargs: Any) -> Any:
            return _CountingCursor(cursor(self.db, *args, **kwargs), self)

        self.db.cursor = counting

    def read_balance(self, pk: int) -> int:
        def read() -> int:
            self._open()
            self._account = self.Account.get_by_id(pk)
            return int(self._account.balance)

        return self.run(read)

    def save_balance(self, pk: int, balance: int) -> None:
        def save() -> None:
            self._account.balance = balance
            self._account.save()

        self.run(save)
        self.end(True)

    def add_atomic(self, pk: int, amount: int) -> tuple[Callable[[], Any], str]:
        Account = self.Account

        def add() -> None:
            self._open()
            Account.update(balance=Account.balance + amount).where(Account.id == pk).execute()

        return add, "Account.update(balance=Account.balance + 100)"

    def seed_account(self, balance: int) -> int:
        return self.run(lambda: self.Account.create(balance=balance).id)
