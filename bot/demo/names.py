"""Name lists for the demo shop: Russian and English first names and surnames.

Small hand-written lists (no data files, no download): enough variety that a demo screen of a few
hundred customers does not look repetitive. Russian surnames are stored in the masculine form and
put into the feminine one by `russian_feminine_surname`, which follows the grammar rather than a
second list, so the pairs can never drift apart.
"""

from __future__ import annotations

RUSSIAN_MALE = (
    "Александр", "Алексей", "Андрей", "Антон", "Аркадий", "Артём", "Борис", "Вадим", "Валентин",
    "Василий", "Виктор", "Виталий", "Владимир", "Вячеслав", "Георгий", "Глеб", "Григорий",
    "Даниил", "Денис", "Дмитрий", "Евгений", "Егор", "Иван", "Игорь", "Илья", "Кирилл",
    "Константин", "Лев", "Леонид", "Максим", "Марк", "Матвей", "Михаил", "Никита", "Николай",
    "Олег", "Павел", "Пётр", "Роман", "Руслан", "Сергей", "Степан", "Тимофей", "Фёдор", "Юрий",
    "Ярослав",
)  # fmt: skip

RUSSIAN_FEMALE = (
    "Александра", "Алина", "Алла", "Анастасия", "Анна", "Валентина", "Валерия", "Варвара", "Вера",
    "Вероника", "Виктория", "Галина", "Дарья", "Диана", "Евгения", "Екатерина", "Елена",
    "Елизавета", "Жанна", "Зоя", "Ирина", "Карина", "Ксения", "Лариса", "Любовь", "Людмила",
    "Маргарита", "Марина", "Мария", "Надежда", "Наталья", "Нина", "Оксана", "Ольга", "Полина",
    "Светлана", "София", "Тамара", "Татьяна", "Ульяна", "Юлия", "Яна",
)  # fmt: skip

# Masculine forms; endings decide the feminine form (see russian_feminine_surname).
RUSSIAN_SURNAMES = (
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
    "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров",
    "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин",
    "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев", "Романов", "Воробьёв",
    "Сергеев", "Фролов", "Ильин", "Гусев", "Титов", "Кузьмин", "Баранов", "Куликов", "Карпов",
    "Белоусов", "Тихонов", "Ершов", "Щукин", "Калинин", "Пушкин", "Голубев", "Виноградов",
    "Богданов", "Медведев", "Жуков", "Беляев", "Тарасов", "Белов", "Комаров", "Киселёв",
    "Маслов", "Ковалевский", "Вишневский", "Савицкий", "Покровский", "Островский", "Толстой",
    "Шевченко", "Коваленко", "Бондаренко", "Кравченко", "Ткаченко", "Черных", "Седых", "Долгих",
    "Дурново",
)  # fmt: skip

ENGLISH_MALE = (
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas",
    "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Paul", "Steven", "Andrew", "Joshua",
    "Oliver", "Harry", "George", "Jack", "Henry", "Samuel", "Edward", "Peter",
)  # fmt: skip

ENGLISH_FEMALE = (
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah",
    "Karen", "Emily", "Emma", "Olivia", "Sophie", "Charlotte", "Amelia", "Grace", "Lucy", "Hannah",
    "Rachel", "Laura", "Rebecca", "Alice", "Kate", "Helen", "Anna",
)  # fmt: skip

ENGLISH_SURNAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor",
    "Anderson", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark",
    "Lewis", "Walker", "Hall", "Allen", "Young", "King", "Wright", "Scott", "Green", "Baker",
    "Evans", "Roberts", "Turner", "Phillips", "Campbell", "Parker", "Edwards", "Collins",
    "Stewart", "Morris", "Cook", "Bell", "Murphy", "Cooper", "Ward", "Hughes", "Wood",
)  # fmt: skip

_FEMININE_ENDINGS = (
    # (masculine ending, feminine ending), longest first so -ский wins over -ий.
    ("ский", "ская"),
    ("цкий", "цкая"),
    ("ской", "ская"),
    ("цкой", "цкая"),
    ("ов", "ова"),
    ("ёв", "ёва"),
    ("ев", "ева"),
    ("ин", "ина"),
    ("ын", "ына"),
    ("ой", "ая"),
    ("ый", "ая"),
)


def russian_feminine_surname(surname: str) -> str:
    """The form a woman bears: Иванов → Иванова, Вишневский → Вишневская, Толстой → Толстая.

    Surnames in -енко, -их/-ых, -аго/-ово and the like do not change with gender (Шевченко,
    Черных, Дурново), and neither does anything the table does not know.
    """
    for masculine, feminine in _FEMININE_ENDINGS:
        if surname.endswith(masculine):
            return surname[: -len(masculine)] + feminine
    return surname


_TRANSLITERATION = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
}  # fmt: skip


def transliterate(text: str) -> str:
    """Russian to Latin letters the way people spell their e-mail addresses (Пётр → petr)."""
    return "".join(_TRANSLITERATION.get(char, char) for char in text.lower())
