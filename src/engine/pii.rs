//! Personal-data detection for the risk scorer (`score-risk`), computed in DuckDB.
//!
//! Detection works at two levels (see docs/pii.md for the rules and the measured precision and
//! recall):
//!
//! 1. **Value level.** [`classify_sql`] builds a `CASE` expression that names the kind of
//!    personal data (one of [`PII_KINDS`]) a single text value matches *and validates as*, or
//!    NULL: e-mail addresses by a strict regular expression; IPv4 (octets ≤ 255) and IPv6
//!    addresses; phone numbers in E.164 or national forms with separators; payment-card numbers
//!    of 13–19 digits with a card-network first digit that pass the Luhn check; SSNs in the
//!    dashed form, excluding area 000, 666 and 9xx, group 00 and serial 0000; IBANs of their
//!    country's length whose mod-97 check is 1; postcodes in forms that are unambiguous alone
//!    (US ZIP+4, UK and Canadian with their space, Dutch); person names: two or three
//!    capitalised words whose first word is a common given name (from the embedded
//!    `GIVEN_NAMES`) and none of which names a company or a place.
//! 2. **Column level.** Some values are ambiguous alone: nine digits may be an SSN or an
//!    invoice number, five digits a ZIP code or a quantity, a date anyone's birthday or an
//!    order date, a single capitalised word a surname or a product. [`classify_with_header_sql`]
//!    takes the column's header: when the header names a kind ([`header_kind`]: `ssn`,
//!    `zip_code`, `DOB`, `last_name`…), values of that kind's ambiguous forms count too (bare
//!    nine-digit SSNs, bare 4–6-digit postcodes and other countries' forms, plausible birth
//!    dates — age 0 to 120 — in any common date format, single name words), and [`scan`] lets
//!    a lower share of matching values ([`RiskParams::header_match_share`]) suffice. A header
//!    alone is never enough: some values must match.
//!
//! Only constant SQL built here and identifiers quoted by [`quote_identifier`] reach DuckDB: a
//! header influences *which* constant rules apply, never the text of the statement.
//!
//! [`assess`] turns the columns found into a risk score and the regulations that apply.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;
use duckdb::Connection;

use super::{header_tokens, quote_identifier, quote_literal};
use crate::domain::{ColumnInfo, PII_KINDS, PiiColumn, Regulation, RiskParams, RiskReport, mask};

/// Columns per scanning statement: each costs ten aggregates and one `CASE` of a few KB.
const SCAN_CHUNK: usize = 40;
/// Values longer than this (in bytes) are counted but never classified: no kind is longer
/// (an e-mail address is at most 254 characters).
const MAX_VALUE_BYTES: usize = 256;
/// Matching values read (in file order) to pick a column's distinct examples from.
const EXAMPLE_WINDOW: u64 = 1000;
/// What `trim` strips around values: ASCII whitespace, no-break spaces, the byte-order mark.
const TRIMMED: &str = " \t\n\r\u{0B}\u{0C}\u{A0}\u{2007}\u{202F}\u{FEFF}";

// ---------------------------------------------------------------------------------------------
// Classification SQL

/// A DuckDB SQL expression naming the kind of personal data (one of [`PII_KINDS`]) that the
/// VARCHAR expression `value` matches and validates as at the value level, or NULL.
///
/// `value` should be trimmed and cheap (a column reference): the expression refers to it many
/// times. Ambiguous forms — bare nine-digit SSNs, bare postcodes, birth dates, single name
/// words — are NULL here; see [`classify_with_header_sql`].
pub fn classify_sql(value: &str) -> String {
    classify_in_context(value, None)
}

/// Like [`classify_sql`], for a value of the column named `header`: when the header names a
/// kind ([`header_kind`]), that kind's ambiguous forms count as well. The header itself never
/// enters the SQL.
pub fn classify_with_header_sql(value: &str, header: &str) -> String {
    classify_in_context(value, header_context(header))
}

fn classify_in_context(t: &str, context: Option<HeaderContext>) -> String {
    classify_as(t, context, PII_KINDS)
}

/// The rules a value of a column with header `context` is tried against, in order: the first
/// that holds names its kind.
fn rules(t: &str, context: Option<HeaderContext>) -> Vec<(&'static str, String)> {
    let mut rules = Vec::with_capacity(10);
    // The kind the header names is tried first, with its widened rule: in a `phone` column a
    // run of digits that happens to pass the Luhn check is still a phone number.
    if let Some(context) = context
        && let Some(rule) = widened_rule(t, context)
    {
        rules.push((context.kind, rule));
    }
    rules.push(("email", email(t)));
    rules.push(("ip", ip(t)));
    rules.push(("phone", phone_international(t)));
    rules.push(("credit_card", credit_card(t)));
    rules.push(("ssn", ssn_formatted(t)));
    rules.push(("iban", iban(t)));
    rules.push(("phone", phone_national(t)));
    rules.push(("postcode", postcode(t)));
    rules.push(("person_name", person_name(t)));
    rules
}

/// The classification `CASE` cut after the last rule of one of `kinds`: it names the kind the
/// full `CASE` names whenever that is one of `kinds` (the rules before stay, so a value that
/// an earlier rule claims is still not counted twice), and never tries the later rules.
/// `'NULL'` when no rule is of `kinds`.
fn classify_as(t: &str, context: Option<HeaderContext>, kinds: &[&str]) -> String {
    let rules = rules(t, context);
    let Some(last) = rules.iter().rposition(|(kind, _)| kinds.contains(kind)) else {
        return "NULL".to_string();
    };
    let mut sql = String::from("CASE");
    for (kind, condition) in &rules[..=last] {
        sql.push_str(&format!("\n  WHEN {condition} THEN '{kind}'"));
    }
    sql.push_str("\nEND");
    sql
}

/// The header-only rule of the kind `context` names, if that kind has ambiguous forms.
fn widened_rule(t: &str, context: HeaderContext) -> Option<String> {
    match context.kind {
        "phone" => Some(phone_digits(t)),
        "ssn" => Some(ssn_bare(t)),
        "postcode" => Some(postcode_with_header(t)),
        "date_of_birth" => Some(date_of_birth(t)),
        "person_name" if context.strong => Some(name_words(t)),
        _ => None,
    }
}

fn full_match(t: &str, regex: &str) -> String {
    format!("regexp_full_match({t}, {})", quote_literal(regex))
}

/// `t` with everything but ASCII digits removed.
fn digits(t: &str) -> String {
    format!("regexp_replace({t}, '[^0-9]', '', 'g')")
}

/// Local part of dot-separated atoms, a domain of labels, a TLD of letters (or punycode).
const EMAIL: &str = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,24}|xn--[A-Za-z0-9-]{2,59})";

fn email(t: &str) -> String {
    format!("(contains({t}, '@') AND strlen({t}) <= 254 AND {})", full_match(t, EMAIL))
}

const OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";

fn ipv4_regex() -> String {
    format!(r"(?:{OCTET}\.){{3}}{OCTET}")
}

/// Full and `::`-compressed IPv6, optionally ending in an IPv4 address (`::ffff:10.0.0.1`).
fn ipv6_regex() -> String {
    let h = "[0-9A-Fa-f]{1,4}";
    let v4 = ipv4_regex();
    [
        format!("(?:{h}:){{7}}{h}"),
        format!("(?:{h}:){{1,7}}:"),
        format!("(?:{h}:){{1,6}}:{h}"),
        format!("(?:{h}:){{1,5}}(?::{h}){{1,2}}"),
        format!("(?:{h}:){{1,4}}(?::{h}){{1,3}}"),
        format!("(?:{h}:){{1,3}}(?::{h}){{1,4}}"),
        format!("(?:{h}:){{1,2}}(?::{h}){{1,5}}"),
        format!("{h}:(?::{h}){{1,6}}"),
        format!("::(?:{h}:){{0,5}}{h}"),
        format!("::(?:[Ff]{{4}}(?::0{{1,4}})?:)?{v4}"),
        format!("(?:{h}:){{6}}{v4}"),
        format!("(?:{h}:){{1,5}}:{v4}"),
    ]
    .join("|")
}

fn ip(t: &str) -> String {
    format!(
        "((strlen({t}) BETWEEN 7 AND 15 AND contains({t}, '.') AND {}) \
         OR (strlen({t}) BETWEEN 2 AND 45 AND contains({t}, ':') AND {}))",
        full_match(t, &ipv4_regex()),
        full_match(t, &ipv6_regex())
    )
}

/// Dates in the shapes phone rules could otherwise take (`12.05.1984`, `1984-05-12`).
const DATE_SHAPE: &str = r"[0-9]{1,4}[-/. ][0-9]{1,2}[-/. ][0-9]{1,4}";

/// `+` and a country code, then digits in groups separated by one space, dot or dash, a group
/// possibly in parentheses (`+44 (0)20 7946 0958`): 7–15 digits (E.164), or `00` instead
/// of `+` (9–17 digits, the `00` included).
fn phone_international(t: &str) -> String {
    const GROUPS: &str = r"(?:(?:[ .-]|[ ]?\([0-9]{1,4}\)[ ]?)[0-9]+)*";
    let d = digits(t);
    format!(
        "((starts_with({t}, '+') AND {} AND strlen({d}) BETWEEN 7 AND 15) \
         OR (starts_with({t}, '00') AND {} AND strlen({d}) BETWEEN 9 AND 17))",
        full_match(t, &format!(r"\+ ?[1-9][0-9]*{GROUPS}")),
        full_match(t, r"00[1-9][0-9]*(?:[ .-][0-9]+)+"),
    )
}

/// North American (`(415) 555-2671`, `415-555-2671`, `1-800-555-0199`, with an extension)
/// and trunk-prefix national forms with separators (`020 7946 0958`, `06 12 34 56 78`,
/// `(030) 1234567`): 9–12 digits, never a date.
fn phone_national(t: &str) -> String {
    const NANP: &str = r"(?:1[ .-]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}(?: ?(?:x|ext\.?|#) ?[0-9]{1,5})?";
    const TRUNK: &str =
        r"0[1-9][0-9]{0,4}(?:[ .-][0-9]{2,8}){1,4}|\(0[1-9][0-9]{0,4}\) ?[0-9]{2,8}(?:[ .-][0-9]{2,8}){0,3}";
    format!(
        "(strlen({t}) BETWEEN 9 AND 26 AND ({t}[1] BETWEEN '0' AND '9' OR {t}[1] = '(') \
         AND ({} OR ({} AND strlen({}) BETWEEN 9 AND 12 AND NOT {})))",
        full_match(t, NANP),
        full_match(t, TRUNK),
        digits(t),
        full_match(t, DATE_SHAPE)
    )
}

/// In a phone column: any of the forms above, or 7–15 bare digits (an optional `+`), as phone
/// numbers stored as numbers are.
fn phone_digits(t: &str) -> String {
    format!("({} OR {} OR {})", full_match(t, r"\+?[0-9]{7,15}"), phone_international(t), phone_national(t))
}

/// 13–19 digits, bare or in groups of digits separated by one space or dash, the first digit
/// a card network's (2 Mastercard/Mir, 3 Amex/JCB/Diners, 4 Visa, 5 Mastercard/Maestro,
/// 6 Discover/UnionPay/Maestro), passing the Luhn check.
fn credit_card(t: &str) -> String {
    let d = digits(t);
    format!(
        "(strlen({t}) BETWEEN 13 AND 23 AND {t}[1] BETWEEN '2' AND '6' AND {} \
         AND strlen({d}) BETWEEN 13 AND 19 AND {})",
        full_match(t, r"[0-9]{13,19}|[0-9]{4}(?:[ -][0-9]{2,7}){2,4}"),
        luhn(&d)
    )
}

/// The Luhn check over a string of digits `d`: from the right, every second digit doubled
/// (less 9 when that exceeds 9); the sum must be a multiple of 10.
fn luhn(d: &str) -> String {
    format!(
        "(list_sum(list_transform(list_reverse(string_split({d}, '')), lambda pii_digit, pii_index: \
         CASE WHEN pii_index % 2 = 1 THEN ascii(pii_digit) - 48 \
         WHEN pii_digit >= '5' THEN 2 * (ascii(pii_digit) - 48) - 9 \
         ELSE 2 * (ascii(pii_digit) - 48) END)) % 10 = 0)"
    )
}

/// The SSA's rules for the nine digits of `d` (area-group-serial): no area 000, 666 or
/// 900–999, no group 00, no serial 0000.
fn ssn_valid(d: &str) -> String {
    format!(
        "(substr({d}, 1, 3) <> '000' AND substr({d}, 1, 3) <> '666' AND substr({d}, 1, 1) <> '9' \
         AND substr({d}, 4, 2) <> '00' AND substr({d}, 6, 4) <> '0000')"
    )
}

/// `123-45-6789` or `123 45 6789`, valid.
fn ssn_formatted(t: &str) -> String {
    format!(
        "(strlen({t}) = 11 AND ({t}[4] = '-' OR {t}[4] = ' ') AND {} AND {})",
        full_match(t, "[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4}"),
        ssn_valid(&digits(t))
    )
}

/// In an SSN column: also nine bare digits or dot-separated groups, valid.
fn ssn_bare(t: &str) -> String {
    format!(
        "({} AND {})",
        full_match(t, r"[0-9]{9}|[0-9]{3}[-. ][0-9]{2}[-. ][0-9]{4}"),
        ssn_valid(&digits(t))
    )
}

/// IBAN lengths by country (the SWIFT IBAN registry).
const IBAN_LENGTHS: &[(u32, &str)] = &[
    (15, "NO"),
    (16, "BE"),
    (18, "DK FI FK FO GL NL SD"),
    (19, "MK SI"),
    (20, "AT BA EE KZ LT LU MN XK"),
    (21, "CH HR LI LV"),
    (22, "BG BH CR DE GB GE IE ME RS VA"),
    (23, "AE GI IL IQ OM SO TL"),
    (24, "AD CZ ES MD PK RO SA SE SK TN VG"),
    (25, "LY PT ST"),
    (26, "IS TR"),
    (27, "BI DJ FR GR IT MC MR SM"),
    (28, "AL AZ BY CY DO GT HN HU LB NI PL SV"),
    (29, "BR EG PS QA UA"),
    (30, "JO KW MU YE"),
    (31, "MT SC"),
    (32, "LC"),
    (33, "RU"),
];

/// Two letters, two check digits and 11–30 letters or digits (spaces between groups allowed,
/// any case), of the length its country's IBANs have, whose ISO 7064 mod-97 remainder is 1:
/// the first four characters moved to the end, letters read as 10–35, the number mod 97
/// computed digit by digit.
fn iban(t: &str) -> String {
    let u = format!("upper(replace({t}, ' ', ''))");
    // `|NO15|BE16|…|`: the length follows the country code. (A lookup in a string rather than
    // `IN` lists: DuckDB's IN-clause optimizer makes planning many columns' lists quadratic.)
    let table: String = IBAN_LENGTHS
        .iter()
        .flat_map(|(length, countries)| countries.split(' ').map(move |c| format!("{c}{length}|")))
        .collect();
    let table = quote_literal(&format!("|{table}"));
    let at = format!("instr({table}, '|' || substr({u}, 1, 2))");
    format!(
        "(strlen({t}) BETWEEN 15 AND 42 AND {t}[3] BETWEEN '0' AND '9' AND {t}[4] BETWEEN '0' AND '9' \
         AND {} AND {at} > 0 AND strlen({u}) = TRY_CAST(substr({table}, {at} + 3, 2) AS INTEGER) \
         AND list_reduce(string_split(substr({u}, 5) || substr({u}, 1, 4), ''), \
         lambda pii_rest, pii_char: CASE WHEN pii_char BETWEEN '0' AND '9' \
         THEN (pii_rest * 10 + ascii(pii_char) - 48) % 97 \
         ELSE (pii_rest * 100 + ascii(pii_char) - 55) % 97 END, 0) = 1)",
        full_match(t, "[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}")
    )
}

/// UK outward and inward codes (the Royal Mail's letter rules, and GIR 0AA).
const UK_OUTWARD: &str = "(?:[A-PR-UWYZ](?:[0-9][0-9A-HJKPSTUW]?|[A-HK-Y][0-9][0-9ABEHMNPRVWXY]?)|GIR)";
const UK_INWARD: &str = "[0-9][ABD-HJLNP-UW-Z]{2}";
/// Canadian forward sortation area and local delivery unit.
const CA_FSA: &str = "[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z]";
const CA_LDU: &str = "[0-9][ABCEGHJ-NPRSTV-Z][0-9]";
/// Dutch: four digits (no leading zero) and two letters other than SA, SD and SS.
const NL_POSTCODE: &str = "[1-9][0-9]{3} ?(?:[A-RT-Z][A-Z]|S[BCE-RT-Z])";

/// Postcodes unambiguous alone: US ZIP+4, UK and Canadian (upper case, with the space),
/// Dutch with the space.
fn postcode(t: &str) -> String {
    let regex = format!(
        "[0-9]{{5}}-[0-9]{{4}}|{UK_OUTWARD} {UK_INWARD}|{CA_FSA} {CA_LDU}|[1-9][0-9]{{3}} (?:[A-RT-Z][A-Z]|S[BCE-RT-Z])"
    );
    // Every form has a digit first (US, Dutch), last (US, Canadian) or third from last (UK).
    format!(
        "(strlen({t}) BETWEEN 6 AND 10 AND ({t}[1] BETWEEN '0' AND '9' OR {t}[-1] BETWEEN '0' AND '9' \
         OR {t}[-3] BETWEEN '0' AND '9') AND {})",
        full_match(t, &regex)
    )
}

/// In a postcode column: also 4–6 bare digits (US ZIP, most of Europe, Australia, India…),
/// ZIP+4 without its dash, Japanese `123-4567`, Polish `12-345`, Brazilian `12345-678`,
/// Swedish/Czech `123 45`, Irish Eircodes, and UK, Canadian and Dutch codes in any case and
/// without their space.
fn postcode_with_header(t: &str) -> String {
    let regex = format!(
        "(?i)[0-9]{{4,6}}|[0-9]{{9}}|[0-9]{{5}}-[0-9]{{4}}|[0-9]{{3}}-[0-9]{{4}}|[0-9]{{2}}-[0-9]{{3}}|[0-9]{{5}}-[0-9]{{3}}\
         |[0-9]{{3}} [0-9]{{2}}|{UK_OUTWARD} ?{UK_INWARD}|{CA_FSA} ?{CA_LDU}|{NL_POSTCODE}\
         |(?:[AC-FHKNPRTV-Y][0-9]{{2}}|D6W) ?[0-9AC-FHKNPRTV-Y]{{4}}"
    );
    full_match(t, &regex)
}

/// Date formats a birth date is read in (the first that parses wins).
const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%Y%m%d",
    "%d %B %Y",
    "%d %b %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
];

/// In a date-of-birth column: a date in one of `DATE_FORMATS` from 120 years ago to today
/// (UTC). Today is written into the statement as a constant: DuckDB's `current_date` needs the
/// ICU extension, which is not compiled in.
fn date_of_birth(t: &str) -> String {
    let today = chrono::Utc::now().date_naive();
    let oldest = today.checked_sub_months(chrono::Months::new(120 * 12)).unwrap_or(chrono::NaiveDate::MIN);
    let formats: Vec<String> = DATE_FORMATS.iter().map(|f| quote_literal(f)).collect();
    format!(
        "(regexp_matches({t}, '^[0-9A-Za-z]') AND try_strptime({t}, [{}]) \
         BETWEEN TIMESTAMP '{} 00:00:00' AND TIMESTAMP '{} 00:00:00')",
        formats.join(", "),
        oldest.format("%Y-%m-%d"),
        today.format("%Y-%m-%d")
    )
}

/// A capitalised word of letters (an apostrophe, hyphen or combining mark inside).
const NAME_WORD: &str = r"\p{Lu}[\p{L}\p{M}'’-]*\p{L}";
/// An honorific before a name.
const TITLE: &str = r"(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame)\.? )?";

/// Two or three capitalised words (an optional title, a middle initial allowed) whose first
/// is a common given name, none of them a company's or place's word.
fn person_name(t: &str) -> String {
    let shape = format!(r"{TITLE}{NAME_WORD}(?: (?:\p{{Lu}}\.?|{NAME_WORD})){{1,2}}");
    format!(
        "(strlen({t}) BETWEEN 3 AND 100 AND {} AND regexp_matches({t}, {}) AND NOT {})",
        full_match(t, &shape),
        given_name_regex(),
        has_word(t, &format!("{NOT_NAME_WORDS} {PLACE_WORDS}"))
    )
}

/// In a column whose header names people (`last_name`, `customer_name`…): one to four
/// capitalised words (or `Surname, Given`), none of them a company's or place's word.
fn name_words(t: &str) -> String {
    let word = r"[\p{L}\p{M}'’.-]*\p{L}\.?";
    let shape = format!(r"{TITLE}\p{{Lu}}{word}(?:,? [\p{{L}}]{word}){{0,3}}");
    format!("({} AND NOT {})", full_match(t, &shape), has_word(t, NOT_NAME_WORDS))
}

/// True when a word of `t` is one of `words` (a space-separated list in lower case).
fn has_word(t: &str, words: &str) -> String {
    let words = words.split_whitespace().collect::<Vec<_>>().join("|");
    format!("regexp_matches(lower({t}), {})", quote_literal(&format!(r"(?:^|[ ,.&])(?:{words})(?:$|[ ,.&])")))
}

/// A regular expression (an SQL literal) for a value whose first word after an optional title
/// is one of the given names, in any case: the word ends where the letters do (`Mary-Jane`,
/// `Mary's` start with `Mary`). One RE2 automaton: a lookup in a string of the names, after
/// extracting and lowering the word, took ten times longer.
fn given_name_regex() -> String {
    let names: Vec<&str> = GIVEN_NAMES.split_whitespace().collect();
    quote_literal(&format!(r"^{TITLE}(?i:{})(?:[^\p{{L}}]|$)", names.join("|")))
}

/// Words that make a capitalised phrase a company, institution or placeholder rather than a
/// person (lower case), in any person-name rule.
const NOT_NAME_WORDS: &str = "\
    inc incorporated ltd limited llc llp plc corp corporation co company companies gmbh ag sa sas sarl \
    bv nv pty pte kg oy spa srl group holding holdings industries international global partners \
    associates solutions systems services technologies technology tech labs consulting capital \
    ventures bank banking insurance finance financial foods food bakery logistics motors pharma \
    pharmaceuticals media studio studios foundation trust fund university college school academy \
    institute hospital clinic hotel hotels restaurant cafe store stores shop market markets \
    supermarket energy electric airlines airways construction properties realty enterprises agency \
    trading brands products retail wholesale network networks software data analytics cloud \
    digital marketing health healthcare medical dental pharmacy auto automotive club team united \
    library museum gallery theatre theater cinema brewing brewery aviation resort engineering \
    design designs books records press unknown anonymous null none test user customer guest admin \
    sample example demo";

/// Words of places (lower case) that make a value-level phrase a place (`Victoria Station`).
/// Place words that are common surnames (Hall, Park, Lane, House…) are left out; in a column
/// whose header names people these do not apply at all.
const PLACE_WORDS: &str = "\
    street road avenue boulevard square place station airport river lake mount mountain county \
    city town village centre center building tower plaza mall gardens falls beach bay springs \
    heights valley island harbour harbor";

/// Common given names across cultures (lower case, with and without accents), for the
/// value-level person-name rule. Names that are everyday English words (May, Will, Hope…)
/// are left out.
const GIVEN_NAMES: &str = "\
    mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty \
    margaret sandra ashley kimberly emily donna michelle carol amanda melissa deborah stephanie \
    rebecca sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma nicole helen \
    samantha katherine christine debra rachel carolyn janet catherine maria heather diane ruth \
    julie olivia joyce virginia victoria kelly lauren christina joan evelyn judith megan andrea \
    cheryl hannah jacqueline martha gloria teresa ann anne sara madison frances kathryn janice \
    jean abigail alice judy sophia julia denise amber doris marilyn danielle beverly isabella \
    theresa diana natalie brittany charlotte marie kayla alexis lori jane claire chloe grace lucy \
    ella mia ava zoe zoë lily sophie holly jessica eleanor harper aria scarlett layla nora \
    hazel aurora savannah audrey brooklyn bella claudia valerie vanessa tiffany erin kristen \
    james robert john michael david william richard joseph thomas charles christopher daniel \
    matthew anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy \
    ronald edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott \
    brandon benjamin samuel gregory alexander frank patrick raymond jack dennis jerry tyler \
    aaron jose josé adam nathan henry douglas zachary peter kyle ethan walter noah jeremy \
    christian keith roger terry gerald harold sean austin carl arthur lawrence dylan jesse \
    jordan bryan billy joe bruce gabriel logan albert willie alan juan wayne elijah randy roy \
    vincent ralph eugene russell bobby mason philip louis liam oliver harry oscar leo charlie \
    freddie alfie archie theo isaac owen lucas luke caleb isaiah hunter connor evan ian colin \
    carlos luis jorge miguel alejandro javier fernando manuel pedro pablo diego sergio ricardo \
    francisco antonio rafael andres andrés eduardo roberto raul raúl alberto enrique hector \
    héctor mario guillermo ignacio joao joão paulo mateus gabriela camila valentina sofia sofía ana \
    lucia lucía paula carmen rosa isabel elena beatriz fernanda mariana daniela adriana \
    veronica verónica silvia marta pilar juana ximena renata luciana catalina guadalupe \
    pierre jacques michel philippe alain francois françois antoine julien sebastien sébastien \
    olivier christophe laurent thierry mathieu guillaume camille nathalie isabelle sylvie celine \
    céline aurelie aurélie amelie amélie chantal monique brigitte helene hélène juliette manon \
    hans klaus jurgen jürgen wolfgang dieter stefan andreas markus matthias uwe sven lars jens \
    anders henrik erik johan niels pieter jan bram sanne lotte anke ingrid astrid birgit heike \
    sabine ursula greta frieda karin maja freja emil finn nils sigrid annika mikael karl \
    giuseppe giovanni francesco marco luca alessandro lorenzo matteo stefano davide simone \
    giulia chiara francesca alessia federica elisa martina roberta antonella \
    ivan dmitri dmitry sergei sergey alexei alexey mikhail nikolai vladimir andrei igor oleg \
    yuri pavel tomasz piotr krzysztof pawel paweł marek jakub katarzyna agnieszka magdalena \
    malgorzata małgorzata natalia olga tatiana svetlana irina ekaterina anastasia yulia oksana \
    petra zuzana milan bogdan vasile mihai ioana elena \
    mohammed muhammad mohammad mohamed ahmed ahmad ali omar hassan hussein ibrahim khalid yusuf \
    youssef mustafa tariq karim samir amir reza hamid mehmet ahmet emre burak fatima aisha \
    layla leila maryam noor zainab amina yasmin mariam zeynep elif ayse ayşe fatma hana salma \
    raj rahul amit arjun vikram sanjay anil sunil rajesh suresh ramesh ravi vijay deepak ajay \
    rohan aarav priya anjali pooja neha sunita kavita lakshmi divya shreya sanjana ananya meera \
    wei jing ming hui yan lei hao xin xiaoming xiaoli yong jie fang ying \
    hiroshi takashi kenji yuki haruto sakura yui aiko akira satoshi naoko keiko \
    minjun seoyeon jiwoo jisoo minji jihoon \
    chinedu emeka obinna ngozi chioma adaeze oluwaseun olumide tunde ayodele kwame kofi \
    kwabena akosua abena thabo sipho themba zanele nomvula amara kamau wanjiru juma baraka \
    minh thanh linh tuan hung huong";

// ---------------------------------------------------------------------------------------------
// Headers

/// What a column's header says about its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeaderContext {
    /// The kind the header names.
    kind: &'static str,
    /// For person names: whether the header names people unambiguously (`last_name`,
    /// `customer_name`), which lets single capitalised words count. A bare `name` is evidence
    /// too (it lowers the share needed) but could as well name products.
    strong: bool,
}

/// The kind of personal data (one of [`PII_KINDS`]) a column's header names, if any:
/// `customer_email` and `EmailAddress` name `email`, `phone no` `phone`, `DOB` `date_of_birth`.
pub fn header_kind(header: &str) -> Option<&'static str> {
    header_context(header).map(|c| c.kind)
}

/// Words of a header that make it a measure (a count, an amount) about something, not the
/// thing: `email_opens`, `phone_revenue`, `mobile_sales_cents`.
const METRIC_WORDS: [&str; 24] = [
    "opens", "clicks", "bounces", "sent", "sends", "sold", "sales", "revenue", "units", "qty", "quantity",
    "cents", "amount", "price", "total", "rate", "ratio", "percent", "pct", "share", "spend", "cost",
    "score", "minutes",
];

/// Devices whose names contain "phone": a header naming one is not about phone numbers.
const PHONE_DEVICES: [&str; 8] = [
    "smartphone",
    "headphone",
    "earphone",
    "microphone",
    "saxophone",
    "xylophone",
    "megaphone",
    "gramophone",
];

fn header_context(header: &str) -> Option<HeaderContext> {
    let tokens = header_tokens(header);
    let compact = tokens.concat();
    let has = |words: &[&str]| tokens.iter().any(|t| words.contains(&t.as_str()));
    let contains = |parts: &[&str]| parts.iter().any(|p| compact.contains(p));
    let strong = |kind| Some(HeaderContext { kind, strong: true });
    // Flags and counts about personal data are not personal data: `email_verified`,
    // `has_phone`, `phone_count`.
    if has(&[
        "verified",
        "valid",
        "validated",
        "confirmed",
        "count",
        "has",
        "is",
        "opt",
        "optin",
        "consent",
        "type",
        "status",
        "flag",
    ]) || has(&METRIC_WORDS)
    {
        return None;
    }
    // Devices, not numbers: `smartphone_model`, `headphones_sold`.
    let device = PHONE_DEVICES.iter().any(|d| compact.contains(d));
    // (Words of other languages too, for exports named in them: `Geburtsdatum`, `téléphone`,
    // `código_postal`.)
    if has(&["email", "mail", "emails", "courriel"]) || contains(&["email", "correoelectronico"]) {
        strong("email")
    } else if !device
        && (has(&[
            "phone",
            "telephone",
            "tel",
            "mobile",
            "cell",
            "cellphone",
            "fax",
            "msisdn",
            "phones",
            "handynummer",
            "telefoon",
            "móvil",
            "movil",
            "cellulare",
        ]) || contains(&["phone", "telefon", "téléfon", "teléfono"]))
    {
        strong("phone")
    } else if has(&["ssn", "ssns"]) || contains(&["socialsecurity", "socsec"]) {
        strong("ssn")
    } else if has(&["iban"]) || contains(&["iban"]) {
        strong("iban")
    } else if has(&["ccn", "pan", "cc"])
        || contains(&["creditcard", "cardnumber", "cardno", "ccnumber", "ccnum", "debitcard"])
    {
        strong("credit_card")
    } else if has(&["ip", "ipv4", "ipv6", "ipaddr", "ipaddress"]) || contains(&["ipaddress", "ipaddr"]) {
        strong("ip")
    } else if has(&["dob", "birthday", "birthdate", "born", "geboren", "gebdat", "gebdatum"])
        || contains(&[
            "geburtsdatum",
            "geburtstag",
            "datenaissance",
            "datedenaissance",
            "fechadenacimiento",
            "fechanacimiento",
            "datadinascita",
            "datanascita",
            "geboortedatum",
            "födelsedatum",
            "dataurodzenia",
        ])
        || (contains(&["birth"])
            && !has(&["place", "country", "city", "town", "weight", "name", "certificate"]))
    {
        strong("date_of_birth")
    } else if has(&[
        "zip",
        "zipcode",
        "postcode",
        "postcodes",
        "postal",
        "postalcode",
        "plz",
        "cep",
        "pincode",
        "eircode",
    ]) || contains(&[
        "postcode",
        "postalcode",
        "zipcode",
        "postleitzahl",
        "codepostal",
        "códigopostal",
        "codigopostal",
    ]) {
        strong("postcode")
    } else if PERSON_NAME_HEADERS.contains(&compact.as_str())
        || has(&[
            "surname",
            "surnames",
            "forename",
            "forenames",
            "firstname",
            "lastname",
            "fullname",
            "givenname",
            "vorname",
            "nachname",
            "familienname",
            "prénom",
            "prenom",
            "apellido",
            "apellidos",
            "cognome",
            "voornaam",
            "achternaam",
        ])
        || (tokens.last().is_some_and(|t| t == "name")
            && tokens.len() >= 2
            && PERSON_WORDS.contains(&tokens[tokens.len() - 2].as_str()))
    {
        strong("person_name")
    } else if compact == "name" || compact == "names" {
        Some(HeaderContext { kind: "person_name", strong: false })
    } else {
        None
    }
}

/// Headers (their words run together) that name people.
const PERSON_NAME_HEADERS: &[&str] = &[
    "fname",
    "lname",
    "firstname",
    "lastname",
    "fullname",
    "givenname",
    "givennames",
    "familyname",
    "middlename",
    "maidenname",
    "surname",
    "forename",
    "personname",
    "nom",
    "prenom",
    "vorname",
    "nachname",
    "nombre",
    "apellido",
    "apellidos",
];

/// Words that, before `name`, make it a person's name (`customer_name`, `patient name`).
const PERSON_WORDS: &[&str] = &[
    "first",
    "last",
    "middle",
    "full",
    "given",
    "family",
    "maiden",
    "sur",
    "fore",
    "customer",
    "client",
    "person",
    "contact",
    "employee",
    "patient",
    "student",
    "owner",
    "member",
    "holder",
    "cardholder",
    "account",
    "buyer",
    "seller",
    "tenant",
    "guest",
    "passenger",
    "applicant",
    "recipient",
    "sender",
    "beneficiary",
    "driver",
    "user",
    "staff",
    "teacher",
    "doctor",
    "physician",
    "nurse",
    "parent",
    "mother",
    "father",
    "spouse",
    "child",
    "emergency",
    "billing",
    "shipping",
    "legal",
    "display",
    "preferred",
    "author",
    "manager",
    "representative",
];

/// Header words that name health information (HIPAA's protected health information) on their
/// own.
const HEALTH_WORDS: &[&str] = &[
    "diagnosis",
    "diagnoses",
    "diagnostic",
    "icd",
    "icd9",
    "icd10",
    "medication",
    "medications",
    "medicine",
    "prescription",
    "prescriptions",
    "patient",
    "patients",
    "mrn",
    "cpt",
    "allergy",
    "allergies",
    "symptom",
    "symptoms",
    "clinical",
    "medical",
    "disease",
    "diseases",
    "therapy",
    "dosage",
    "dose",
    "vaccine",
    "vaccination",
    "immunization",
    "physician",
    "hospital",
    "bmi",
    "cholesterol",
    "glucose",
    "hba1c",
    "pregnancy",
    "disability",
    "hiv",
    "oncology",
    "surgery",
    "medicare",
    "medicaid",
    "triage",
    "comorbidity",
    "comorbidities",
];

/// Header words that may name health information but often do not: `rx_bytes` (network),
/// `treatment_group` (A/B tests), `lab` (a lab name), `account_health`, `drug` (a catalogue),
/// `blood` (`blood_orange`), `encounter` (games), `npi` (a score). Each counts only in a
/// phrase of [`HEALTH_PHRASES`], beside a header that is clearly health information, or with
/// another of a [`HEALTH_PAIRS`] pair among the dataset's headers.
const AMBIGUOUS_HEALTH_WORDS: &[&str] =
    &["rx", "treatment", "treatments", "lab", "labs", "health", "drug", "drugs", "blood", "encounter", "npi"];

/// An ambiguous word with the words that make a header clearly medical (`blood_pressure`,
/// `lab_result`, `health_record`, `treatment_plan`, `rx_number`, `drug_dose`).
const HEALTH_PHRASES: &[(&str, &[&str])] = &[
    ("blood", &["pressure", "type", "group", "sugar", "test", "tests", "count", "panel", "bp"]),
    ("lab", &["result", "results", "test", "tests", "value", "values", "panel", "order", "orders"]),
    ("labs", &["result", "results", "test", "tests", "value", "values", "panel"]),
    ("health", &["record", "records", "condition", "conditions", "plan", "insurance", "insurer", "history"]),
    ("treatment", &["plan", "plans", "outcome", "history", "regimen"]),
    ("treatments", &["plan", "plans", "history"]),
    ("rx", &["number", "no", "num", "fill", "refill", "refills", "drug", "ndc"]),
    ("drug", &["dose", "dosage", "ndc", "allergy", "regimen"]),
    ("drugs", &["dose", "dosage", "ndc"]),
    ("encounter", &["diagnosis", "provider", "visit"]),
];

/// Ambiguous words that together (in any of the dataset's headers) are clearly medical.
const HEALTH_PAIRS: &[(&str, &str)] = &[
    ("lab", "blood"),
    ("labs", "blood"),
    ("rx", "drug"),
    ("rx", "drugs"),
    ("drug", "treatment"),
    ("encounter", "npi"),
];

/// What a header says about health information.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HealthEvidence {
    /// Nothing.
    None,
    /// Only ambiguous words (those of [`AMBIGUOUS_HEALTH_WORDS`] it has).
    Ambiguous(Vec<&'static str>),
    /// Health information on its own: an unambiguous word or a medical phrase.
    Clear,
}

fn health_evidence(name: &str) -> HealthEvidence {
    let tokens = header_tokens(name);
    let compact = tokens.concat();
    let has = |word: &str| tokens.iter().any(|t| t == word);
    let clear = tokens.iter().any(|t| HEALTH_WORDS.contains(&t.as_str()))
        || ["diagnos", "medication", "prescri", "patient", "icd10", "clinical", "symptom", "allerg"]
            .iter()
            .any(|p| compact.contains(p))
        || HEALTH_PHRASES.iter().any(|(word, companions)| {
            companions.iter().any(|c| (has(word) && has(c)) || has(&format!("{word}{c}")))
        });
    if clear {
        return HealthEvidence::Clear;
    }
    let ambiguous: Vec<&'static str> = AMBIGUOUS_HEALTH_WORDS.iter().copied().filter(|w| has(w)).collect();
    if ambiguous.is_empty() { HealthEvidence::None } else { HealthEvidence::Ambiguous(ambiguous) }
}

/// Whether a header names health information on its own (`diagnosis_code`, `PatientID`,
/// `ICD10`, `blood_pressure`).
#[cfg(test)]
fn is_health_header(name: &str) -> bool {
    health_evidence(name) == HealthEvidence::Clear
}

/// The dataset's health columns, in order: those clearly so ([`is_health_header`]), and those
/// with only ambiguous words when a clear one exists or when the ambiguous words of the
/// dataset's headers make a pair of [`HEALTH_PAIRS`] (then the columns with a word of such a
/// pair).
fn health_columns(dataset_columns: &[ColumnInfo]) -> Vec<String> {
    let evidence: Vec<(&str, HealthEvidence)> =
        dataset_columns.iter().map(|c| (c.name.as_str(), health_evidence(&c.name))).collect();
    let any_clear = evidence.iter().any(|(_, e)| *e == HealthEvidence::Clear);
    let words: BTreeSet<&str> = evidence
        .iter()
        .filter_map(|(_, e)| match e {
            HealthEvidence::Ambiguous(words) => Some(words.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    let paired: BTreeSet<&str> = HEALTH_PAIRS
        .iter()
        .filter(|(a, b)| words.contains(a) && words.contains(b))
        .flat_map(|(a, b)| [*a, *b])
        .collect();
    evidence
        .into_iter()
        .filter(|(_, e)| match e {
            HealthEvidence::Clear => true,
            HealthEvidence::Ambiguous(words) => any_clear || words.iter().any(|w| paired.contains(w)),
            HealthEvidence::None => false,
        })
        .map(|(name, _)| name.to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Scanning a file

/// How one column is read for classification.
struct Plan<'a> {
    info: &'a ColumnInfo,
    context: Option<HeaderContext>,
    /// SQL producing the column's values as VARCHAR (or NULL).
    value: String,
}

/// The SQL that reads a column as text for classification, or None when its type cannot
/// hold personal data: text as is; integers (phone, card, SSN and ZIP numbers stored as
/// numbers) and DECIMAL(p, 0) as their digits; DATE and TIMESTAMP columns only when the
/// header names birth dates (a date alone is no one's birthday), as `YYYY-MM-DD`.
fn value_sql(info: &ColumnInfo, context: Option<HeaderContext>) -> Option<String> {
    let q = quote_identifier(&info.name);
    let t = info.data_type.trim().to_ascii_uppercase();
    let dob = context.is_some_and(|c| c.kind == "date_of_birth");
    let text = matches!(t.as_str(), "VARCHAR" | "TEXT" | "STRING" | "CHAR" | "BPCHAR")
        || t.starts_with("VARCHAR(")
        || t.starts_with("ENUM(");
    let integer = super::is_integer_type(&t);
    let whole_decimal = (t.starts_with("DECIMAL(") || t.starts_with("NUMERIC(")) && t.ends_with(",0)");
    if text || integer || whole_decimal || (dob && t == "DATE") {
        Some(format!("CAST({q} AS VARCHAR)"))
    } else if dob && t.starts_with("TIMESTAMP") && !t.ends_with(']') {
        Some(format!("CAST(CAST({q} AS DATE) AS VARCHAR)"))
    } else {
        None
    }
}

/// Counts of one column: non-null, non-blank values, and matches per kind of [`PII_KINDS`].
#[derive(Debug, Clone, Default, PartialEq)]
struct Counts {
    non_null: u64,
    matches: Vec<u64>,
}

/// Rows the first pass of [`scan`] classifies: four windows of a quarter of this each, at 0,
/// ¼, ½ and ¾ of the file; fewer in a wide file (see [`SAMPLE_VALUES`]).
const SAMPLE_ROWS: u64 = 100_000;
/// Values the first pass classifies at most: a file of more than 20 classifiable columns
/// samples fewer rows, but never fewer than [`MIN_SAMPLE_ROWS`]. The full rules cost about
/// 0.7 µs a value (2 threads): 150 columns of 100,000 rows would take 10 s.
const SAMPLE_VALUES: u64 = 2_000_000;
/// Rows the first pass classifies at least: a kind needs a share of at least
/// `header_match_share` (or `min_match_share`) of a column, so it shows in far fewer rows.
const MIN_SAMPLE_ROWS: u64 = 10_000;

/// Scans the Parquet file `data` (whose columns are `columns`) for personal data, then one
/// small query per column found reads a few distinct matching values for `examples`, masked
/// by [`mask`].
///
/// In two passes. The first classifies, with the full rules ([`classify_with_header_sql`] with
/// the column's header), the values of [`SAMPLE_ROWS`] rows (fewer in a file of more than 20
/// classifiable columns, [`SAMPLE_VALUES`]) in four windows of
/// `file_row_number` at 0, ¼, ½ and ¾ of the file (the reader skips the other row groups):
/// the kinds that match at least one sampled value are the column's candidates. The second
/// reads every row, but only the columns with a candidate, and counts their non-null non-blank
/// values and the values of each candidate kind, with the rules cut after the candidates' last
/// (see `classify_as`): the counts of the kinds it counts are those of the full rules. A
/// file of at most that many rows (or with a column named `file_row_number`) is its own
/// sample. The first pass is one unpivoted statement ([`sample_candidates`]); the second
/// takes 40 columns at a time (`SCAN_CHUNK`).
///
/// A column holds a kind when the kind's share of its values is at least
/// `params.min_match_share`, or `params.header_match_share` when its header names the kind —
/// never with no matching value at all; of several kinds, the largest share wins. Columns come
/// back in file order. `progress(percent 0..=100, stage)` never goes backwards. Blocking.
pub fn scan(
    conn: &Connection,
    data: &Path,
    columns: &[ColumnInfo],
    params: &RiskParams,
    progress: &mut dyn FnMut(f64, &str),
) -> anyhow::Result<Vec<PiiColumn>> {
    scan_sampled(conn, data, columns, params, progress, SAMPLE_ROWS)
}

/// [`scan`] with a first pass of `sample_rows` rows.
fn scan_sampled(
    conn: &Connection,
    data: &Path,
    columns: &[ColumnInfo],
    params: &RiskParams,
    progress: &mut dyn FnMut(f64, &str),
    sample_rows: u64,
) -> anyhow::Result<Vec<PiiColumn>> {
    let source = format!("read_parquet({})", quote_literal(&data.display().to_string()));
    let plans: Vec<Plan> = columns
        .iter()
        .filter_map(|info| {
            let context = header_context(&info.name);
            value_sql(info, context).map(|value| Plan { info, context, value })
        })
        .collect();
    progress(0.0, "scanning columns");
    let started = std::time::Instant::now();
    // Each plan with the kinds the exact pass counts for it.
    let mut exact: Vec<(&Plan, Vec<&'static str>)> = Vec::new();
    // `file_row_number` is hidden by a real column of that name.
    let hidden = columns.iter().any(|c| c.name.eq_ignore_ascii_case("file_row_number"));
    let rows: u64 = if plans.is_empty() || hidden {
        0
    } else {
        let rows: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {source}"), [], |r| r.get(0))
            .context("counting rows")?;
        u64::try_from(rows).unwrap_or(0)
    };
    let sample_rows = sample_rows.min((SAMPLE_VALUES / plans.len().max(1) as u64).max(MIN_SAMPLE_ROWS));
    let sampled = !hidden && rows > sample_rows;
    // Candidates from the sample (or, in a small file, from every row) in one unpivoted
    // statement; then exact counts of the candidates only.
    if !plans.is_empty() {
        let sample = if sampled {
            format!("(SELECT * FROM {source} WHERE {})", super::sample_windows(rows, sample_rows))
        } else {
            source.clone()
        };
        let candidates = sample_candidates(conn, &sample, &plans).context("sampling for personal data")?;
        for (plan, kinds) in plans.iter().zip(candidates) {
            if !kinds.is_empty() {
                exact.push((plan, kinds));
            }
        }
        progress(10.0, "sampling columns");
        tracing::debug!(
            columns = plans.len(),
            candidates = exact.len(),
            sampled,
            seconds = started.elapsed().as_secs_f64(),
            "personal data: sampled"
        );
    }
    let start = 10.0;
    let chunks: Vec<&[(&Plan, Vec<&'static str>)]> = exact.chunks(SCAN_CHUNK).collect();
    let mut found: Vec<(&Plan, usize, Counts)> = Vec::new();
    for (n, chunk) in chunks.iter().enumerate() {
        let counts = count_chunk(conn, &source, chunk)
            .with_context(|| format!("scanning for personal data (chunk {})", n + 1))?;
        for ((plan, _), counts) in chunk.iter().zip(counts) {
            if let Some(kind) = decide(&counts, plan.context, params) {
                found.push((plan, kind, counts));
            }
        }
        progress(start + (90.0 - start) * (n + 1) as f64 / chunks.len() as f64, "scanning columns");
        tracing::debug!(
            chunk = n + 1,
            columns = chunk.len(),
            kinds = chunk.iter().map(|(_, kinds)| kinds.len()).sum::<usize>(),
            seconds = started.elapsed().as_secs_f64(),
            "personal data: counted"
        );
    }
    let mut result = Vec::with_capacity(found.len());
    let total = found.len();
    for (n, (plan, kind_index, counts)) in found.into_iter().enumerate() {
        let kind = PII_KINDS[kind_index];
        let examples = if params.max_examples == 0 {
            Vec::new()
        } else {
            examples(conn, &source, plan, kind, params.max_examples)
                .with_context(|| format!("reading examples of column {}", plan.info.name))?
                .iter()
                .map(|value| mask(kind, value))
                .collect()
        };
        let match_count = counts.matches[kind_index];
        result.push(PiiColumn {
            column: plan.info.name.clone(),
            kind: kind.to_string(),
            match_count,
            non_null_count: counts.non_null,
            share: match_count as f64 / counts.non_null as f64,
            header_evidence: plan.context.is_some_and(|c| c.kind == kind),
            sensitivity: sensitivity(kind).to_string(),
            examples,
        });
        progress(90.0 + 10.0 * (n + 1) as f64 / total as f64, "examples");
    }
    progress(100.0, "examples");
    tracing::debug!(found = total, seconds = started.elapsed().as_secs_f64(), "personal data: examples read");
    Ok(result)
}

/// Per plan, the kinds (in [`PII_KINDS`] order) that some value of `sample` (a relation with
/// the plans' columns) matches with the full rules. One statement: the values are unpivoted
/// into one column and classified by one `CASE` per header context (most columns have none),
/// so each rule's regular expressions are compiled a few times, not once per column (which
/// cost about 90 ms a column).
fn sample_candidates(
    conn: &Connection,
    sample: &str,
    plans: &[Plan],
) -> anyhow::Result<Vec<Vec<&'static str>>> {
    if plans.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<String> =
        plans.iter().enumerate().map(|(i, p)| format!("{} AS \"{i}\"", p.value)).collect();
    let mut contexts: Vec<(HeaderContext, Vec<usize>)> = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        if let Some(context) = plan.context {
            match contexts.iter_mut().find(|(c, _)| *c == context) {
                Some((_, members)) => members.push(i),
                None => contexts.push((context, vec![i])),
            }
        }
    }
    let generic = classify_as("t", None, PII_KINDS);
    let mut kind = if contexts.is_empty() { generic.clone() } else { String::from("CASE") };
    for (context, members) in &contexts {
        let names: Vec<String> = members.iter().map(|i| format!("'{i}'")).collect();
        kind.push_str(&format!(
            "\n WHEN col IN ({}) THEN {}",
            names.join(", "),
            classify_as("t", Some(*context), PII_KINDS)
        ));
    }
    if !contexts.is_empty() {
        kind.push_str(&format!("\n ELSE {generic} END"));
    }
    let sql = format!(
        "SELECT CAST(col AS INTEGER), k FROM (\
           SELECT col, {kind} AS k FROM (\
             SELECT col, CASE WHEN strlen(v) <= {MAX_VALUE_BYTES} THEN trim(v, {trimmed}) END AS t \
             FROM (UNPIVOT (SELECT {values} FROM {sample}) ON COLUMNS(*) INTO NAME col VALUE v))) \
         WHERE k IS NOT NULL GROUP BY ALL",
        trimmed = quote_literal(TRIMMED),
        values = values.join(", "),
    );
    let mut found: Vec<Vec<&'static str>> = vec![Vec::new(); plans.len()];
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let (i, k): (i32, String) = (row.get(0)?, row.get(1)?);
        if let (Some(kinds), Some(kind)) =
            (usize::try_from(i).ok().and_then(|i| found.get_mut(i)), PII_KINDS.iter().find(|p| **p == k))
        {
            kinds.push(kind);
        }
    }
    for kinds in &mut found {
        kinds.sort_by_key(|k| PII_KINDS.iter().position(|p| p == k));
    }
    Ok(found)
}

/// The relation of a chunk's columns: `v{i}` the value, `t{i}` the trimmed value (NULL when
/// longer than [`MAX_VALUE_BYTES`]), `k{i}` its kind among the plan's kinds (see
/// `classify_as`).
fn classified(source: &str, chunk: &[(&Plan, Vec<&'static str>)]) -> String {
    let values: Vec<String> =
        chunk.iter().enumerate().map(|(i, (p, _))| format!("{} AS v{i}", p.value)).collect();
    let trimmed: Vec<String> = (0..chunk.len())
        .map(|i| {
            format!(
                "v{i}, CASE WHEN strlen(v{i}) <= {MAX_VALUE_BYTES} THEN trim(v{i}, {}) END AS t{i}",
                quote_literal(TRIMMED)
            )
        })
        .collect();
    let kinds: Vec<String> = chunk
        .iter()
        .enumerate()
        .map(|(i, (p, kinds))| {
            format!("v{i}, t{i}, {} AS k{i}", classify_as(&format!("t{i}"), p.context, kinds))
        })
        .collect();
    format!(
        "(SELECT {} FROM (SELECT {} FROM (SELECT {} FROM {source})))",
        kinds.join(", "),
        trimmed.join(", "),
        values.join(", ")
    )
}

/// Per plan of `chunk`: its non-null non-blank values and its values of each of its kinds
/// (other kinds count 0).
fn count_chunk(
    conn: &Connection,
    source: &str,
    chunk: &[(&Plan, Vec<&'static str>)],
) -> anyhow::Result<Vec<Counts>> {
    let mut outputs = Vec::new();
    let mut slots = Vec::new();
    for (i, (_, kinds)) in chunk.iter().enumerate() {
        outputs.push(format!(
            "CAST(count(*) FILTER (WHERE v{i} IS NOT NULL AND (t{i} IS NULL OR t{i} <> '')) AS BIGINT)"
        ));
        let mut kind_slots = Vec::new();
        for (index, kind) in PII_KINDS.iter().enumerate() {
            if kinds.contains(kind) {
                kind_slots.push((index, outputs.len()));
                outputs.push(format!("CAST(count(*) FILTER (WHERE k{i} = '{kind}') AS BIGINT)"));
            }
        }
        slots.push(kind_slots);
    }
    let sql = format!("SELECT {} FROM {}", outputs.join(", "), classified(source, chunk));
    let cells: Vec<u64> = conn.query_row(&sql, [], |row| {
        (0..outputs.len())
            .map(|i| Ok(row.get::<_, Option<i64>>(i)?.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)))
            .collect()
    })?;
    let mut counts = Vec::with_capacity(chunk.len());
    let mut at = 0;
    for kind_slots in slots {
        let mut matches = vec![0; PII_KINDS.len()];
        for &(index, slot) in &kind_slots {
            matches[index] = cells[slot];
        }
        counts.push(Counts { non_null: cells[at], matches });
        at += 1 + kind_slots.len();
    }
    Ok(counts)
}

/// The kind (index into [`PII_KINDS`]) a column holds, if any: see [`scan`].
fn decide(counts: &Counts, context: Option<HeaderContext>, params: &RiskParams) -> Option<usize> {
    if counts.non_null == 0 {
        return None;
    }
    let header = context.map(|c| c.kind);
    let mut best: Option<(usize, f64)> = None;
    for (index, (&kind, &matched)) in PII_KINDS.iter().zip(&counts.matches).enumerate() {
        if matched == 0 {
            continue;
        }
        let share = matched as f64 / counts.non_null as f64;
        let passes =
            share >= params.min_match_share || (header == Some(kind) && share >= params.header_match_share);
        let better = match best {
            None => true,
            Some((b, s)) => share > s || (share == s && header == Some(kind) && header != Some(PII_KINDS[b])),
        };
        if passes && better {
            best = Some((index, share));
        }
    }
    best.map(|(index, _)| index)
}

/// Up to `limit` distinct trimmed values of the column that are of `kind`, in order, from its
/// first [`EXAMPLE_WINDOW`] matching values (a statement that stops reading once it has them).
fn examples(
    conn: &Connection,
    source: &str,
    plan: &Plan,
    kind: &str,
    limit: u64,
) -> anyhow::Result<Vec<String>> {
    let value = &plan.value;
    let t = format!("trim(v, {})", quote_literal(TRIMMED));
    let sql = format!(
        "SELECT CAST(t AS VARCHAR) FROM (SELECT t FROM (SELECT {t} AS t FROM (SELECT {value} AS v FROM {source}) \
         WHERE strlen(v) <= {MAX_VALUE_BYTES}) WHERE {} = {} LIMIT {EXAMPLE_WINDOW}) \
         GROUP BY t ORDER BY t LIMIT {limit}",
        classify_as("t", plan.context, &[kind]),
        quote_literal(kind),
        limit = limit.min(EXAMPLE_WINDOW)
    );
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map([], |row| row.get::<_, Option<String>>(0))?;
    let mut values = Vec::new();
    for row in rows {
        if let Some(value) = row? {
            values.push(value);
        }
    }
    Ok(values)
}

/// high (identifies or defrauds on its own), medium (contact and identity details) or low
/// (quasi-identifiers), as documented on [`PiiColumn::sensitivity`].
fn sensitivity(kind: &str) -> &'static str {
    match kind {
        "ssn" | "credit_card" | "iban" => "high",
        "email" | "phone" | "person_name" | "date_of_birth" => "medium",
        _ => "low",
    }
}

// ---------------------------------------------------------------------------------------------
// Risk score and regulations

/// Points a column of each kind adds to the score at share 1 (half of them at share 0).
fn weight(kind: &str) -> f64 {
    match kind {
        "ssn" | "credit_card" => 45.0,
        "iban" => 40.0,
        "email" | "phone" | "person_name" | "date_of_birth" => 15.0,
        _ => 7.0,
    }
}

/// Bonus when a name or e-mail (who) sits beside an SSN, card or IBAN (what to defraud them of).
const IDENTITY_BONUS: f64 = 20.0;
/// Bonus for date of birth with postcode: with sex, they single out most people (Sweeney).
const QUASI_IDENTIFIER_BONUS: f64 = 15.0;
/// Bonus for a name with an e-mail address or phone number: a contact profile.
const CONTACT_BONUS: f64 = 5.0;
/// Bonus for health information beside any personal data.
const HEALTH_BONUS: f64 = 15.0;
/// Each further column of a kind already counted adds this fraction of its points.
const REPEAT_FACTOR: f64 = 0.25;

/// The risk report for the personal-data columns found (by [`scan`]) in a dataset whose
/// columns are `dataset_columns` (whose headers tell health information). Pure.
///
/// **Score** (0–100, one decimal): each column scores `weight(kind) × (0.5 + 0.5 × share)` —
/// SSN and card 45, IBAN 40, e-mail, phone, name and date of birth 15, IP and postcode 7;
/// per kind the best column counts in full and each other at 25%; then bonuses for
/// combinations: +20 name or e-mail with SSN, card or IBAN; +15 date of birth with postcode;
/// +5 name with e-mail or phone; +15 health columns with any personal data; capped at 100.
/// **Level**: low below 10, medium below 30, high below 60, critical from 60.
/// **Regulations**: see docs/pii.md. Reasons name columns, never values.
pub fn assess(mut columns: Vec<PiiColumn>, dataset_columns: &[ColumnInfo]) -> RiskReport {
    let rank = |s: &str| match s {
        "high" => 0,
        "medium" => 1,
        _ => 2,
    };
    columns.sort_by(|a, b| rank(&a.sensitivity).cmp(&rank(&b.sensitivity)).then(b.share.total_cmp(&a.share)));
    let health = health_columns(dataset_columns);
    let risk_score = score(&columns, !health.is_empty());
    let risk_level = match risk_score {
        s if s < 10.0 => "low",
        s if s < 30.0 => "medium",
        s if s < 60.0 => "high",
        _ => "critical",
    };
    let regulations = vec![gdpr(&columns, &health), ccpa(&columns), hipaa(&columns, &health)];
    RiskReport { risk_score, risk_level: risk_level.into(), columns, regulations }
}

fn score(columns: &[PiiColumn], health: bool) -> f64 {
    let kinds: BTreeSet<&str> = columns.iter().map(|c| c.kind.as_str()).collect();
    let mut total = 0.0;
    for kind in &kinds {
        let mut points: Vec<f64> = columns
            .iter()
            .filter(|c| c.kind == *kind)
            .map(|c| {
                let share = if c.share.is_finite() { c.share.clamp(0.0, 1.0) } else { 0.0 };
                weight(kind) * (0.5 + 0.5 * share)
            })
            .collect();
        points.sort_by(|a, b| b.total_cmp(a));
        total += points.first().copied().unwrap_or(0.0) + REPEAT_FACTOR * points.iter().skip(1).sum::<f64>();
    }
    let has = |k: &str| kinds.contains(k);
    if (has("person_name") || has("email")) && (has("ssn") || has("credit_card") || has("iban")) {
        total += IDENTITY_BONUS;
    }
    if has("date_of_birth") && has("postcode") {
        total += QUASI_IDENTIFIER_BONUS;
    }
    if has("person_name") && (has("email") || has("phone")) {
        total += CONTACT_BONUS;
    }
    if health && !kinds.is_empty() {
        total += HEALTH_BONUS;
    }
    (total.min(100.0) * 10.0).round() / 10.0
}

/// `a (email), b (phone)`: column names with their kinds, never values.
fn described(columns: &[&PiiColumn]) -> String {
    columns
        .iter()
        .map(|c| format!("{} ({})", c.column, c.kind.replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn names(columns: &[&PiiColumn]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    columns.iter().filter(|c| seen.insert(c.column.as_str())).map(|c| c.column.clone()).collect()
}

/// Appends the names not already in `list`.
fn extend_unique(list: &mut Vec<String>, names: impl IntoIterator<Item = String>) {
    for name in names {
        if !list.contains(&name) {
            list.push(name);
        }
    }
}

fn gdpr(columns: &[PiiColumn], health: &[String]) -> Regulation {
    let all: Vec<&PiiColumn> = columns.iter().collect();
    if all.is_empty() {
        return Regulation {
            name: "GDPR".into(),
            applies: false,
            reasons: vec![
                "No personal data was detected; GDPR would apply to data relating to identifiable \
                           people in the EU/EEA or UK."
                    .into(),
            ],
            columns: Vec::new(),
        };
    }
    let mut reasons = vec![format!(
        "Personal data relating to identifiable people (GDPR Art. 4(1)) if the data subjects are in the \
         EU/EEA or UK: {}.",
        described(&all)
    )];
    let quasi: Vec<&PiiColumn> =
        all.iter().copied().filter(|c| matches!(c.kind.as_str(), "ip" | "postcode")).collect();
    if !quasi.is_empty() {
        reasons.push(format!(
            "Online identifiers and location data count as personal data when they can be linked to a \
             person: {}.",
            described(&quasi)
        ));
    }
    let mut concerned = names(&all);
    if !health.is_empty() {
        reasons.push(format!(
            "Health data is a special category (Art. 9) requiring an explicit legal basis: {}.",
            health.join(", ")
        ));
        extend_unique(&mut concerned, health.iter().cloned());
    }
    Regulation { name: "GDPR".into(), applies: true, reasons, columns: concerned }
}

fn ccpa(columns: &[PiiColumn]) -> Regulation {
    let personal: Vec<&PiiColumn> = columns.iter().filter(|c| c.kind != "postcode").collect();
    if personal.is_empty() {
        let reason = if columns.is_empty() {
            "No personal information was detected.".to_string()
        } else {
            format!(
                "Only postcodes were found ({}): not personal information on their own; CCPA would apply \
                 with identifiers such as names, e-mail addresses or account numbers.",
                names(&columns.iter().collect::<Vec<_>>()).join(", ")
            )
        };
        return Regulation {
            name: "CCPA".into(),
            applies: false,
            reasons: vec![reason],
            columns: Vec::new(),
        };
    }
    let mut reasons = vec![format!(
        "Personal information of California consumers (Cal. Civ. Code §1798.140) if the business is in \
         scope: {}.",
        described(&personal)
    )];
    let sensitive: Vec<&PiiColumn> = personal
        .iter()
        .copied()
        .filter(|c| matches!(c.kind.as_str(), "ssn" | "credit_card" | "iban"))
        .collect();
    if !sensitive.is_empty() {
        reasons.push(format!(
            "Sensitive personal information (SSN, financial account or card numbers) with a right to limit \
             its use: {}.",
            described(&sensitive)
        ));
    }
    let mut all: Vec<&PiiColumn> = personal;
    all.extend(columns.iter().filter(|c| c.kind == "postcode"));
    Regulation { name: "CCPA".into(), applies: true, reasons, columns: names(&all) }
}

fn hipaa(columns: &[PiiColumn], health: &[String]) -> Regulation {
    let all: Vec<&PiiColumn> = columns.iter().collect();
    match (health.is_empty(), all.is_empty()) {
        (true, _) => Regulation {
            name: "HIPAA".into(),
            applies: false,
            reasons: vec![
                "No health-related columns (diagnosis, medication, patient, MRN…) were \
                           found; HIPAA covers individually identifiable health information held by covered \
                           entities and their business associates."
                    .into(),
            ],
            columns: Vec::new(),
        },
        (false, true) => Regulation {
            name: "HIPAA".into(),
            applies: false,
            reasons: vec![format!(
                "Health-related columns ({}) were found but no identifiers: the data may be de-identified \
                 (Safe Harbor requires all 18 identifiers removed, which this scan checks only in part).",
                health.join(", ")
            )],
            columns: health.to_vec(),
        },
        (false, false) => {
            let mut concerned = health.to_vec();
            extend_unique(&mut concerned, names(&all));
            Regulation {
                name: "HIPAA".into(),
                applies: true,
                reasons: vec![
                    format!("Health-related columns: {}.", health.join(", ")),
                    format!(
                        "They sit beside HIPAA identifiers (45 CFR §164.514(b)(2)): {}: this is protected \
                         health information if held by a covered entity or business associate.",
                        described(&all)
                    ),
                ],
                columns: concerned,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;

    fn fixture(conn: &Connection, dir: &Path, name: &str, select: &str) -> (PathBuf, Vec<ColumnInfo>) {
        let path = dir.join(name);
        let columns = super::super::parquet_fixture(conn, &path, select);
        (path, columns)
    }

    /// Scans, checking that progress only goes forward and ends at 100.
    fn run(conn: &Connection, path: &Path, columns: &[ColumnInfo], params: &RiskParams) -> Vec<PiiColumn> {
        let mut seen: Vec<f64> = Vec::new();
        let found = scan(conn, path, columns, params, &mut |percent, _| seen.push(percent)).unwrap();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress went backwards: {seen:?}");
        assert_eq!(seen.last(), Some(&100.0));
        found
    }

    fn find<'a>(found: &'a [PiiColumn], column: &str) -> Option<&'a PiiColumn> {
        found.iter().find(|c| c.column == column)
    }

    /// The kind `classify_with_header_sql` gives one value in a column named `header`.
    fn classify(conn: &Connection, value: &str, header: &str) -> Option<String> {
        conn.query_row(
            &format!(
                "SELECT CAST({} AS VARCHAR) FROM (SELECT trim(CAST(? AS VARCHAR), {}) AS t)",
                classify_with_header_sql("t", header),
                quote_literal(TRIMMED)
            ),
            [value],
            |r| r.get(0),
        )
        .unwrap()
    }

    fn luhn_digit(body: &str) -> u32 {
        (0..10)
            .find(|check| {
                let number = format!("{body}{check}");
                let sum: u32 = number
                    .chars()
                    .rev()
                    .enumerate()
                    .map(|(i, c)| {
                        let d = c.to_digit(10).unwrap();
                        if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
                    })
                    .sum();
                sum.is_multiple_of(10)
            })
            .unwrap()
    }

    /// Precision and recall per kind on the labelled fixture (tests/fixtures/pii_labelled.csv,
    /// made by make_pii_fixture.py): each value classified with its column's header. Run with
    /// `--nocapture` to see the table recorded in docs/pii.md.
    #[test]
    fn labelled_fixture_precision_and_recall() {
        let conn = Connection::open_in_memory().unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pii_labelled.csv");
        let source = format!(
            "read_csv({}, all_varchar = true, header = true, delim = ',', quote = '\"', escape = '\"')",
            quote_literal(&path.display().to_string())
        );
        let mut statement =
            conn.prepare(&format!("SELECT DISTINCT header FROM {source} ORDER BY header")).unwrap();
        let headers: Vec<String> =
            statement.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert!(headers.len() > 20, "{headers:?}");
        // (true positives, false positives, false negatives) per kind.
        let mut tally: HashMap<&str, (u64, u64, u64)> = PII_KINDS.iter().map(|k| (*k, (0, 0, 0))).collect();
        let mut labelled: HashMap<String, u64> = HashMap::new();
        let mut errors = Vec::new();
        for header in &headers {
            let sql = format!(
                "SELECT value, label, CAST({} AS VARCHAR) FROM \
                 (SELECT value, label, trim(value, {}) AS t FROM {source} WHERE header = ?)",
                classify_with_header_sql("t", header),
                quote_literal(TRIMMED)
            );
            let mut statement = conn.prepare(&sql).unwrap();
            let rows = statement
                .query_map([header], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
                })
                .unwrap();
            for row in rows {
                let (value, label, predicted) = row.unwrap();
                *labelled.entry(label.clone()).or_default() += 1;
                let predicted = predicted.unwrap_or_else(|| "none".into());
                assert!(label == "none" || PII_KINDS.contains(&label.as_str()), "label {label}");
                if predicted == label {
                    if let Some(t) = tally.get_mut(label.as_str()) {
                        t.0 += 1;
                    }
                    continue;
                }
                errors.push(format!("  {header:>24} | {value:<32} labelled {label}, classified {predicted}"));
                if let Some(t) = tally.get_mut(predicted.as_str()) {
                    t.1 += 1;
                }
                if let Some(t) = tally.get_mut(label.as_str()) {
                    t.2 += 1;
                }
            }
        }
        println!("| kind | labelled | true pos. | false pos. | false neg. | precision | recall |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let mut failures = Vec::new();
        for kind in PII_KINDS {
            let (tp, fp, fn_) = tally[kind];
            let precision = tp as f64 / (tp + fp).max(1) as f64;
            let recall = tp as f64 / (tp + fn_).max(1) as f64;
            println!(
                "| {kind} | {} | {tp} | {fp} | {fn_} | {precision:.3} | {recall:.3} |",
                labelled.get(*kind).copied().unwrap_or(0)
            );
            if labelled.get(*kind).copied().unwrap_or(0) < 60 || precision < 0.95 || recall < 0.95 {
                failures.push(*kind);
            }
        }
        println!("none labelled: {}", labelled.get("none").copied().unwrap_or(0));
        println!("misclassified:\n{}", errors.join("\n"));
        assert!(failures.is_empty(), "below 0.95 (or fewer than 60 labelled values): {failures:?}");
    }

    #[test]
    fn validation_rules() {
        let conn = Connection::open_in_memory().unwrap();
        let cases: &[(&str, &str, Option<&str>)] = &[
            // Luhn: one digit off fails; a non-network first digit fails.
            ("4242 4242 4242 4242", "", Some("credit_card")),
            ("4242-4242-4242-4241", "", None),
            ("4242424242424242", "", Some("credit_card")),
            ("378282246310005", "", Some("credit_card")),
            ("9242424242424242", "", None),
            // SSN: area 000/666/9xx, group 00, serial 0000 are never issued.
            ("123-45-6789", "", Some("ssn")),
            ("000-45-6789", "", None),
            ("666-45-6789", "", None),
            ("900-45-6789", "", None),
            ("123-00-6789", "", None),
            ("123-45-0000", "", None),
            ("123456789", "", None),
            ("123456789", "SSN", Some("ssn")),
            ("123456789", "invoice_no", None),
            // IBAN: mod 97 and the country's length.
            ("GB82 WEST 1234 5698 7654 32", "", Some("iban")),
            ("gb82west12345698765432", "", Some("iban")),
            ("GB83 WEST 1234 5698 7654 32", "", None),
            ("GB82 WEST 1234 5698 7654 3", "", None),
            ("DE89370400440532013000", "", Some("iban")),
            // IP addresses.
            ("192.168.1.20", "", Some("ip")),
            ("256.1.1.1", "", None),
            ("1.2.3", "", None),
            ("2001:db8::8a2e:370:7334", "", Some("ip")),
            ("::ffff:10.0.0.1", "", Some("ip")),
            ("00:1A:2B:3C:4D:5E", "", None),
            // Phones, not dates or plain numbers.
            ("+44 20 7946 0958", "", Some("phone")),
            ("(415) 555-2671", "", Some("phone")),
            ("020 7946 0958", "", Some("phone")),
            ("12.05.1984", "", None),
            ("4155552671", "", None),
            ("4155552671", "phone no", Some("phone")),
            // Postcodes: a bare five digits only with a header.
            ("SW1A 1AA", "", Some("postcode")),
            ("K1A 0B1", "", Some("postcode")),
            ("90210-1234", "", Some("postcode")),
            ("90210", "", None),
            ("90210", "zip_code", Some("postcode")),
            ("QQ1 1AA", "", None),
            // Dates of birth: only with a header, a plausible age.
            ("1984-03-07", "", None),
            ("1984-03-07", "DOB", Some("date_of_birth")),
            ("07/03/1984", "date_of_birth", Some("date_of_birth")),
            ("2090-01-01", "dob", None),
            ("1850-01-01", "dob", None),
            ("1984-03-07", "order_date", None),
            // Names.
            ("Jane Doe", "", Some("person_name")),
            ("Dr. Maria K. Lopez", "", Some("person_name")),
            ("Grace Bakery Ltd", "", None),
            ("Victoria Station", "", None),
            ("Acme Corp", "", None),
            ("Okonkwo", "", None),
            ("Okonkwo", "last_name", Some("person_name")),
            ("Unknown", "last_name", None),
            // E-mail.
            ("jane.doe+news@mail.example.co.uk", "", Some("email")),
            ("john..doe@example.com", "", None),
            ("jane@localhost", "", None),
            // Odd input.
            ("", "", None),
            ("   ", "", None),
            ("日本語のテキスト", "", None),
            ("O'Brien's", "", None),
        ];
        for (value, header, expected) in cases {
            assert_eq!(classify(&conn, value, header).as_deref(), *expected, "{value:?} under {header:?}");
        }
        // The value-only form is the header form with no header.
        let sql: Option<String> = conn
            .query_row(
                &format!(
                    "SELECT CAST({} AS VARCHAR) FROM (SELECT 'jane@example.com' AS t)",
                    classify_sql("t")
                ),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(sql.as_deref(), Some("email"));
    }

    #[test]
    fn headers_name_kinds() {
        for (header, kind) in [
            ("customer_email", Some("email")),
            ("EmailAddress", Some("email")),
            ("e-mail", Some("email")),
            ("email_verified", None),
            ("email_opens", None),
            ("phone no", Some("phone")),
            ("homephone", Some("phone")),
            ("headphones_sold", None),
            ("smartphone_revenue_cents", None),
            ("smartphone_model", None),
            ("mobile_sales", None),
            ("MobilePhone", Some("phone")),
            ("DOB", Some("date_of_birth")),
            ("dateOfBirth", Some("date_of_birth")),
            ("place_of_birth", None),
            ("SSN", Some("ssn")),
            ("social_security_number", Some("ssn")),
            ("card_number", Some("credit_card")),
            ("IBAN", Some("iban")),
            ("client_ip", Some("ip")),
            ("IPAddress", Some("ip")),
            ("zip", Some("postcode")),
            ("PostalCode", Some("postcode")),
            ("first_name", Some("person_name")),
            ("customerName", Some("person_name")),
            ("name", Some("person_name")),
            ("product_name", None),
            ("Geburtsdatum", Some("date_of_birth")),
            ("date_de_naissance", Some("date_of_birth")),
            ("fecha_nacimiento", Some("date_of_birth")),
            ("Telefonnummer", Some("phone")),
            ("téléphone", Some("phone")),
            ("Postleitzahl", Some("postcode")),
            ("Nachname", Some("person_name")),
            ("prénom", Some("person_name")),
            ("courriel", Some("email")),
            ("username", None),
            ("amount", None),
            ("", None),
            ("we\"ird", None),
        ] {
            assert_eq!(header_kind(header), kind, "{header}");
        }
        assert!(!header_context("name").unwrap().strong);
        assert!(header_context("last_name").unwrap().strong);
        assert!(
            is_health_header("diagnosis_code") && is_health_header("PatientID") && is_health_header("ICD10")
        );
        assert!(!is_health_header("product_condition") && !is_health_header("email"));
    }

    #[test]
    fn scan_finds_emails_and_masks_examples() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "emails.parquet",
            "SELECT 'user' || i || '@example.com' AS customer_email, i AS id, 'note ' || i AS note, \
             CASE WHEN i % 5 = 0 THEN NULL ELSE 'jane' || i || '@mail.example.org' END AS contact \
             FROM range(50) r(i)",
        );
        let found = run(&conn, &path, &columns, &RiskParams::default());
        assert_eq!(found.len(), 2, "{found:?}");
        let email = find(&found, "customer_email").unwrap();
        assert_eq!((email.kind.as_str(), email.match_count, email.non_null_count), ("email", 50, 50));
        assert_eq!((email.share, email.header_evidence, email.sensitivity.as_str()), (1.0, true, "medium"));
        assert_eq!(email.examples.len(), 3);
        for example in &email.examples {
            assert_eq!(example, "u***@e***.com");
            assert!(!example.contains("user"));
        }
        let contact = find(&found, "contact").unwrap();
        assert_eq!((contact.kind.as_str(), contact.non_null_count, contact.share), ("email", 40, 1.0));
        assert!(!contact.header_evidence);
        // No examples when none are asked for.
        let params = RiskParams { max_examples: 0, ..RiskParams::default() };
        assert!(run(&conn, &path, &columns, &params).iter().all(|c| c.examples.is_empty()));
    }

    #[test]
    fn luhn_failing_numbers_are_not_cards() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let mut valid = Vec::new();
        let mut invalid = Vec::new();
        for i in 0..200u64 {
            let body = format!("4{:014}", 12_345_678_901 + i * 7_919);
            let check = luhn_digit(&body);
            valid.push(format!("'{body}{check}'"));
            invalid.push(format!("'{body}{}'", (check + 1) % 10));
        }
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "cards.parquet",
            &format!(
                "SELECT v AS order_number, w AS card, CAST(v AS BIGINT) AS order_id, CAST(w AS BIGINT) AS payment \
                 FROM (SELECT unnest([{}]) AS v, unnest([{}]) AS w)",
                invalid.join(", "),
                valid.join(", ")
            ),
        );
        let found = run(&conn, &path, &columns, &RiskParams::default());
        assert!(find(&found, "order_number").is_none() && find(&found, "order_id").is_none(), "{found:?}");
        for column in ["card", "payment"] {
            let card = find(&found, column).unwrap();
            assert_eq!(
                (card.kind.as_str(), card.share, card.sensitivity.as_str()),
                ("credit_card", 1.0, "high")
            );
            for example in &card.examples {
                assert!(example.starts_with("************"), "{example}");
                assert!(!valid.iter().any(|v| v.trim_matches('\'') == example), "{example}");
            }
        }
    }

    #[test]
    fn header_evidence_lowers_the_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        // 40% phone numbers, the rest placeholders; five-digit and nine-digit numbers.
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "headers.parquet",
            "SELECT CASE WHEN i % 5 < 2 THEN '+44 20 7946 ' || lpad((1000 + i)::VARCHAR, 4, '0') ELSE 'unknown' END AS phone, \
                    CASE WHEN i % 5 < 2 THEN '+44 20 7946 ' || lpad((1000 + i)::VARCHAR, 4, '0') ELSE 'unknown' END AS notes, \
                    'n/a' AS email, \
                    lpad((10000 + i * 37)::VARCHAR, 5, '0') AS zip, \
                    lpad((10000 + i * 37)::VARCHAR, 5, '0') AS quantity, \
                    (123450000 + i * 1013)::VARCHAR AS ssn, \
                    (123450000 + i * 1013)::VARCHAR AS invoice_no \
             FROM range(100) r(i)",
        );
        let found = run(&conn, &path, &columns, &RiskParams::default());
        let phone = find(&found, "phone").unwrap();
        assert_eq!((phone.kind.as_str(), phone.share, phone.header_evidence), ("phone", 0.4, true));
        assert_eq!(phone.examples.len(), 3);
        assert!(phone.examples.iter().all(|e| e.starts_with("+** ** **** **")), "{:?}", phone.examples);
        assert!(find(&found, "notes").is_none(), "40% is below min_match_share without a header");
        assert!(find(&found, "email").is_none(), "a header alone is not enough");
        assert_eq!(find(&found, "zip").map(|c| c.kind.as_str()), Some("postcode"));
        assert_eq!(
            find(&found, "ssn").map(|c| (c.kind.as_str(), c.sensitivity.as_str())),
            Some(("ssn", "high"))
        );
        assert!(find(&found, "quantity").is_none() && find(&found, "invoice_no").is_none(), "{found:?}");
        // A stricter header share turns the phone column off.
        let params = RiskParams { header_match_share: 0.5, ..RiskParams::default() };
        assert!(find(&run(&conn, &path, &columns, &params), "phone").is_none());
    }

    #[test]
    fn typed_columns_and_birth_dates() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "typed.parquet",
            "SELECT DATE '1950-01-01' + CAST(i * 97 AS INTEGER) AS birth_date, \
                    DATE '1950-01-01' + CAST(i * 97 AS INTEGER) AS order_date, \
                    TIMESTAMP '1970-01-01 08:00:00' + to_days(CAST(i * 53 AS INTEGER)) AS dob, \
                    14155550000 + i AS phone_number, \
                    14155550000 + i AS amount, \
                    i * 1.5 AS score, \
                    i % 2 = 0 AS email_verified \
             FROM range(100) r(i)",
        );
        let found = run(&conn, &path, &columns, &RiskParams::default());
        let dob = find(&found, "birth_date").unwrap();
        assert_eq!((dob.kind.as_str(), dob.share, dob.header_evidence), ("date_of_birth", 1.0, true));
        assert!(dob.examples.iter().all(|e| e == "****-**-**"), "{:?}", dob.examples);
        assert_eq!(find(&found, "dob").map(|c| c.kind.as_str()), Some("date_of_birth"));
        assert_eq!(find(&found, "phone_number").map(|c| c.kind.as_str()), Some("phone"));
        for column in ["order_date", "amount", "score", "email_verified"] {
            assert!(find(&found, column).is_none(), "{column}: {found:?}");
        }
    }

    #[test]
    fn awkward_names_and_odd_data() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "awkward.parquet",
            "SELECT 'p' || i || '@example.com' AS \"we\"\"ird\", \
                    '+1 415 555 ' || lpad(i::VARCHAR, 4, '0') AS \"select\", \
                    '10.0.' || (i % 256) || '.' || (i % 200 + 1) AS \"адрес_ip\", \
                    CAST(NULL AS VARCHAR) AS nothing, \
                    repeat('x', 100000) || i AS huge, \
                    CASE WHEN i % 2 = 0 THEN '  jane' || i || '@example.com ' ELSE '' END AS padded, \
                    '日本語 ' || i AS \"名前\", \
                    [i, i + 1] AS list, \
                    {'a': i} AS struct \
             FROM range(30) r(i)",
        );
        let found = run(&conn, &path, &columns, &RiskParams::default());
        assert_eq!(find(&found, "we\"ird").map(|c| c.kind.as_str()), Some("email"));
        assert_eq!(find(&found, "select").map(|c| c.kind.as_str()), Some("phone"));
        let ip = find(&found, "адрес_ip").unwrap();
        assert_eq!((ip.kind.as_str(), ip.header_evidence), ("ip", true));
        assert!(ip.examples.iter().all(|e| e.starts_with("10.***")), "{:?}", ip.examples);
        // Blank values are not counted: 15 of 30 are addresses (padded with spaces), 15 empty.
        let padded = find(&found, "padded").unwrap();
        assert_eq!((padded.kind.as_str(), padded.non_null_count, padded.share), ("email", 15, 1.0));
        for column in ["nothing", "huge", "名前", "list", "struct"] {
            assert!(find(&found, column).is_none(), "{column}");
        }

        // An empty file and a file with no columns to scan.
        let (path, columns) =
            fixture(&conn, dir.path(), "empty.parquet", "SELECT 'a@example.com' AS email WHERE false");
        assert!(run(&conn, &path, &columns, &RiskParams::default()).is_empty());
        let (path, columns) = fixture(&conn, dir.path(), "numbers.parquet", "SELECT 1.5 AS x, true AS b");
        assert!(run(&conn, &path, &columns, &RiskParams::default()).is_empty());
        assert!(run(&conn, &path, &[], &RiskParams::default()).is_empty());
    }

    #[test]
    fn many_columns_are_scanned_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let select: Vec<String> = (0..(SCAN_CHUNK * 2 + 3))
            .map(|n| {
                if n % 10 == 0 {
                    format!("'u' || i || '@example.com' AS c{n}")
                } else {
                    format!("'text ' || i AS c{n}")
                }
            })
            .collect();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "wide.parquet",
            &format!("SELECT {} FROM range(20) r(i)", select.join(", ")),
        );
        let found = run(&conn, &path, &columns, &RiskParams::default());
        let names: Vec<&str> = found.iter().map(|c| c.column.as_str()).collect();
        let expected: Vec<String> =
            (0..(SCAN_CHUNK * 2 + 3)).filter(|n| n % 10 == 0).map(|n| format!("c{n}")).collect();
        assert_eq!(names, expected);
    }

    fn column(name: &str, kind: &str, share: f64) -> PiiColumn {
        PiiColumn {
            column: name.into(),
            kind: kind.into(),
            match_count: (share * 100.0) as u64,
            non_null_count: 100,
            share,
            header_evidence: false,
            sensitivity: sensitivity(kind).into(),
            examples: vec![mask(kind, "secret.value@example.com")],
        }
    }

    fn info(names: &[&str]) -> Vec<ColumnInfo> {
        names.iter().map(|n| ColumnInfo { name: (*n).into(), data_type: "VARCHAR".into() }).collect()
    }

    fn regulation<'a>(report: &'a RiskReport, name: &str) -> &'a Regulation {
        report.regulations.iter().find(|r| r.name == name).unwrap()
    }

    #[test]
    fn assess_scores_and_regulations() {
        // Nothing found.
        let report = assess(Vec::new(), &info(&["a", "diagnosis"]));
        assert_eq!((report.risk_score, report.risk_level.as_str()), (0.0, "low"));
        assert!(report.regulations.iter().all(|r| !r.applies && !r.reasons.is_empty()));
        assert_eq!(
            report.regulations.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["GDPR", "CCPA", "HIPAA"]
        );

        // Postcodes alone: low; personal data under GDPR, not personal information under CCPA.
        let report = assess(vec![column("zip", "postcode", 1.0)], &info(&["zip"]));
        assert_eq!((report.risk_score, report.risk_level.as_str()), (7.0, "low"));
        assert!(regulation(&report, "GDPR").applies && !regulation(&report, "CCPA").applies);

        // E-mail alone at share 1: 15, medium; half the points at share 0.
        let report = assess(vec![column("mail", "email", 1.0)], &info(&["mail"]));
        assert_eq!((report.risk_score, report.risk_level.as_str()), (15.0, "medium"));
        assert_eq!(assess(vec![column("mail", "email", 0.0)], &[]).risk_score, 7.5);
        assert!(regulation(&report, "CCPA").applies);
        let hipaa = regulation(&report, "HIPAA");
        assert!(!hipaa.applies && hipaa.columns.is_empty());

        // Date of birth with postcode: the quasi-identifier bonus.
        let report = assess(vec![column("dob", "date_of_birth", 1.0), column("zip", "postcode", 1.0)], &[]);
        assert_eq!((report.risk_score, report.risk_level.as_str()), (15.0 + 7.0 + 15.0, "high"));

        // SSN with a name: high-sensitivity first, identity bonus, critical; CCPA sensitive PI.
        let report = assess(
            vec![
                column("full_name", "person_name", 1.0),
                column("ssn", "ssn", 1.0),
                column("ssn2", "ssn", 0.5),
            ],
            &info(&["full_name", "ssn", "ssn2"]),
        );
        assert_eq!(
            report.columns.iter().map(|c| c.column.as_str()).collect::<Vec<_>>(),
            ["ssn", "ssn2", "full_name"]
        );
        // 45 + 25% of 45 × 0.75 (8.4375) + 15 + 20, to one decimal.
        assert_eq!(report.risk_score, 88.4);
        assert_eq!(report.risk_level, "critical");
        let ccpa = regulation(&report, "CCPA");
        assert!(ccpa.applies && ccpa.reasons.iter().any(|r| r.contains("Sensitive") && r.contains("ssn")));
        assert!(!regulation(&report, "HIPAA").applies);

        // HIPAA: identifiers beside health columns.
        let report = assess(
            vec![column("patient_email", "email", 1.0)],
            &info(&["patient_email", "diagnosis_code", "MedicationName", "visit"]),
        );
        let hipaa = regulation(&report, "HIPAA");
        assert!(hipaa.applies, "{hipaa:?}");
        assert_eq!(hipaa.columns, ["patient_email", "diagnosis_code", "MedicationName"]);
        assert_eq!(report.risk_score, 15.0 + 15.0);
        assert!(regulation(&report, "GDPR").reasons.iter().any(|r| r.contains("Art. 9")));
        // Health columns without identifiers: HIPAA does not apply, and says why.
        let report = assess(Vec::new(), &info(&["diagnosis_code"]));
        let hipaa = regulation(&report, "HIPAA");
        assert!(!hipaa.applies && hipaa.reasons[0].contains("diagnosis_code"));

        // Capped at 100.
        let everything: Vec<PiiColumn> = PII_KINDS.iter().map(|k| column(k, k, 1.0)).collect();
        let report = assess(everything, &info(&["diagnosis"]));
        assert_eq!((report.risk_score, report.risk_level.as_str()), (100.0, "critical"));
        // Odd shares do not poison the score.
        assert!(assess(vec![column("x", "email", f64::NAN)], &[]).risk_score.is_finite());
    }

    /// Scans with a first pass of `sample_rows` rows, checking progress as [`run`] does.
    fn run_sampled(
        conn: &Connection,
        path: &Path,
        columns: &[ColumnInfo],
        params: &RiskParams,
        sample_rows: u64,
    ) -> Vec<PiiColumn> {
        let mut seen: Vec<f64> = Vec::new();
        let found =
            scan_sampled(conn, path, columns, params, &mut |percent, _| seen.push(percent), sample_rows)
                .unwrap();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress went backwards: {seen:?}");
        assert_eq!(seen.last(), Some(&100.0));
        found
    }

    #[test]
    fn sampled_columns_get_exact_counts() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        // 4,000 rows in row groups of 500; a sample of 400 rows reads rows 0–99, 1000–1099,
        // 2000–2099 and 3000–3099.
        let path = dir.path().join("partial.parquet");
        conn.execute_batch(&format!(
            "COPY (SELECT i AS id, \
                    CASE WHEN i < 1500 THEN 'user' || i || '@example.com' ELSE 'n/a' END AS customer_email, \
                    CASE WHEN i >= 2800 THEN '+44 20 7946 ' || lpad((i % 10000)::VARCHAR, 4, '0') \
                         WHEN i % 7 = 0 THEN NULL ELSE 'call back' END AS phone, \
                    CASE WHEN i BETWEEN 200 AND 900 THEN 'jane' || i || '@example.com' ELSE 'note ' || i END AS notes, \
                    'Jane Doe' AS name, \
                    CASE WHEN i % 2 = 0 THEN '192.168.0.' || (i % 250) ELSE '123-45-' || lpad(i::VARCHAR, 4, '1') END AS mixed \
                  FROM range(4000) r(i)) TO {} (FORMAT parquet, ROW_GROUP_SIZE 500)",
            quote_literal(&path.display().to_string())
        ))
        .unwrap();
        let (_, columns) = fixture(
            &conn,
            dir.path(),
            "same.parquet",
            "SELECT * FROM read_parquet(?)"
                .replace('?', &quote_literal(&path.display().to_string()))
                .as_str(),
        );
        let found = run_sampled(&conn, &path, &columns, &RiskParams::default(), 400);
        // E-mails in rows 0–1499 only: half the sample, 37.5% of the file — the exact share.
        let email = find(&found, "customer_email").unwrap();
        assert_eq!((email.kind.as_str(), email.match_count, email.non_null_count), ("email", 1500, 4000));
        assert_eq!(email.share, 0.375);
        // Phones from row 2800: in the last window only, counted over every row.
        let phone = find(&found, "phone").unwrap();
        let nulls = (0..2800).filter(|i| i % 7 == 0).count() as u64;
        assert_eq!(
            (phone.kind.as_str(), phone.match_count, phone.non_null_count),
            ("phone", 1200, 4000 - nulls)
        );
        assert_eq!(phone.examples.len(), 3);
        // Data only between the windows is not seen (the documented limit); the full pass sees
        // it, but at 17.5% it is not reported anyway.
        assert!(find(&found, "notes").is_none());
        // Half IPs, half SSNs: both in the sample, each counted exactly; at a 0.5 threshold one
        // is reported (the tie goes to the kind listed first).
        let mixed = find(&found, "mixed");
        assert!(mixed.is_none(), "{mixed:?}");
        // The sampled result is the full result on evenly spread data.
        let full = run_sampled(&conn, &path, &columns, &RiskParams::default(), u64::MAX);
        assert_eq!(found, full);
        let params = RiskParams { min_match_share: 0.5, header_match_share: 0.3, ..RiskParams::default() };
        let sampled = run_sampled(&conn, &path, &columns, &params, 400);
        let mixed = find(&sampled, "mixed").unwrap();
        assert_eq!((mixed.kind.as_str(), mixed.match_count, mixed.share), ("ssn", 2000, 0.5));
        assert_eq!(sampled, run_sampled(&conn, &path, &columns, &params, u64::MAX));
    }

    #[test]
    fn a_file_smaller_than_the_sample_is_read_once_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        // Personal data only in the last rows: the whole file is the sample.
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "small.parquet",
            "SELECT CASE WHEN i >= 600 THEN 'user' || i || '@example.com' ELSE 'none' END AS email, \
                    CASE WHEN i >= 990 THEN '10.0.0.' || (i % 200) ELSE 'x' END AS host \
             FROM range(1000) r(i)",
        );
        let found = run(&conn, &path, &columns, &RiskParams::default());
        assert_eq!(found.len(), 1, "{found:?}");
        let email = find(&found, "email").unwrap();
        assert_eq!((email.match_count, email.non_null_count, email.share), (400, 1000, 0.4));
        // The same file with a sample of 100 rows (windows at 0, 250, 500, 750) finds it too.
        assert_eq!(run_sampled(&conn, &path, &columns, &RiskParams::default(), 100), found);
    }

    #[test]
    fn hipaa_needs_medical_evidence() {
        let ip = || vec![column("client_ip", "ip", 1.0)];
        let email = || vec![column("email", "email", 1.0)];
        for (found, headers) in [
            (ip(), vec!["client_ip", "rx_bytes", "tx_bytes", "timestamp"]),
            (email(), vec!["email", "treatment_group", "variant", "converted"]),
            (email(), vec!["email", "account_health", "plan"]),
            (email(), vec!["email", "lab", "trx_no", "health_score", "drug_store"]),
        ] {
            let report = assess(found, &info(&headers));
            let hipaa = regulation(&report, "HIPAA");
            assert!(!hipaa.applies && hipaa.columns.is_empty(), "{headers:?}: {hipaa:?}");
            assert!(report.risk_score < 16.0, "{headers:?}: no health bonus, {}", report.risk_score);
            assert!(!regulation(&report, "GDPR").reasons.iter().any(|r| r.contains("Art. 9")), "{headers:?}");
        }
        // A patient table: clear words, with ambiguous ones beside them.
        let report = assess(
            vec![column("patient_name", "person_name", 1.0), column("email", "email", 1.0)],
            &info(&[
                "mrn",
                "patient_name",
                "email",
                "diagnosis_code",
                "treatment",
                "lab_result",
                "rx",
                "visit_date",
            ]),
        );
        let hipaa = regulation(&report, "HIPAA");
        assert!(hipaa.applies, "{hipaa:?}");
        assert_eq!(
            hipaa.columns,
            ["mrn", "patient_name", "diagnosis_code", "treatment", "lab_result", "rx", "email"]
        );
        assert_eq!(report.risk_score, 15.0 + 15.0 + 5.0 + 15.0);
        // Ambiguous words in a medical phrase, or paired.
        for headers in [
            vec!["email", "blood_pressure"],
            vec!["email", "HealthRecordId"],
            vec!["email", "lab", "blood"],
            vec!["email", "rx", "drug"],
        ] {
            let hipaa = hipaa_of(&headers);
            assert!(hipaa.applies, "{headers:?}: {hipaa:?}");
        }
        assert!(is_health_header("blood_pressure") && is_health_header("rx_number"));
        for header in ["rx_bytes", "treatment_group", "account_health", "lab", "trx_number", "bloodhound"] {
            assert!(!is_health_header(header), "{header}");
        }
    }

    fn hipaa_of(headers: &[&str]) -> Regulation {
        let report = assess(vec![column("email", "email", 1.0)], &info(headers));
        regulation(&report, "HIPAA").clone()
    }

    #[test]
    fn reasons_name_columns_never_values() {
        let columns = vec![column("contact", "email", 1.0), column("card", "credit_card", 1.0)];
        let examples: Vec<String> = columns.iter().flat_map(|c| c.examples.clone()).collect();
        let report = assess(columns, &info(&["contact", "card", "diagnosis"]));
        for regulation in &report.regulations {
            for reason in &regulation.reasons {
                assert!(!reason.contains("secret") && !reason.contains("example.com"), "{reason}");
                assert!(examples.iter().all(|e| !reason.contains(e.as_str())), "{reason}");
            }
        }
        serde_json::to_string(&report).unwrap();
    }
    /// Times `scan` on a generated Parquet file (`PII_BENCH_ROWS` rows, default 3 million; kept
    /// in `PII_BENCH_DIR` when set): id, name, e-mail, amount, category, dates, free text and an
    /// order reference. `cargo test --release --lib engine::pii::tests::bench_scan -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_scan() {
        let rows: u64 =
            std::env::var("PII_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000_000);
        let temp = tempfile::tempdir().unwrap();
        let dir =
            std::env::var("PII_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|_| temp.path().to_path_buf());
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("SET threads = 2").unwrap();
        let path = dir.join(format!("pii_bench_{rows}.parquet"));
        if !path.exists() {
            conn.execute_batch(&format!(
                "COPY (SELECT i AS id, \
                   ['James','Mary','Robert','Patricia','Wei','Fatima','Carlos','Anna','Zog','Blip'][1 + i % 10] || ' ' || \
                   ['Smith','Okonkwo','Garcia','Müller','Chen','Brown','Rossi','Kowalski'][1 + (i // 10) % 8] AS name, \
                   ['james','mary','rob','pat','wei','fatima'][1 + i % 6] || '.' || i || '@' || \
                   ['example.com','mail.example.org','corp.example.co.uk'][1 + i % 3] AS email, \
                   round((i * 7919) % 100000 / 100.0, 2) AS amount, \
                   ['books','toys','garden','electronics','food'][1 + i % 5] AS category, \
                   DATE '2020-01-01' + CAST(i % 1500 AS INTEGER) AS order_date, \
                   TIMESTAMP '2021-01-01 00:00:00' + to_seconds(CAST(i AS BIGINT) * 7) AS updated_at, \
                   'Customer asked about order ' || i || ' and ' || ['delivery','refund','size','colour'][1 + i % 4] \
                     || ' options, reply sent' AS notes, \
                   'ORD-' || lpad(CAST(i AS VARCHAR), 9, '0') AS order_ref \
                 FROM range({rows}) r(i)) TO {} (FORMAT parquet)",
                quote_literal(&path.display().to_string())
            ))
            .unwrap();
        }
        let source = format!("read_parquet({})", quote_literal(&path.display().to_string()));
        let mut statement = conn.prepare(&format!("DESCRIBE SELECT * FROM {source}")).unwrap();
        let columns: Vec<ColumnInfo> = statement
            .query_map([], |r| Ok(ColumnInfo { name: r.get(0)?, data_type: r.get(1)? }))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let params = RiskParams::default();
        for _ in 0..2 {
            let start = std::time::Instant::now();
            let found = scan(&conn, &path, &columns, &params, &mut |_, _| {}).unwrap();
            println!("scan of {rows} rows: {:.2} s", start.elapsed().as_secs_f64());
            for c in &found {
                println!("  {} {} {}/{}", c.column, c.kind, c.match_count, c.non_null_count);
            }
        }
    }
}
