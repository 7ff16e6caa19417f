//! What the risk scorer reports: personal data found per column, a risk score, and the
//! regulations that apply. Example values are always masked.

use serde::{Deserialize, Serialize};

/// The risk scorer's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskParams {
    /// A column holds a kind of personal data when at least this share (0–1) of its
    /// non-null values match and validate as that kind.
    pub min_match_share: f64,
    /// With a header naming the kind (`email`, `phone`, `ssn`…), this lower share suffices.
    pub header_match_share: f64,
    /// How many masked example values each finding shows.
    pub max_examples: u64,
}

impl Default for RiskParams {
    fn default() -> Self {
        RiskParams { min_match_share: 0.8, header_match_share: 0.3, max_examples: 3 }
    }
}

/// Kinds of personal data the scorer recognises.
pub const PII_KINDS: &[&str] =
    &["email", "phone", "credit_card", "ssn", "iban", "ip", "postcode", "date_of_birth", "person_name"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskReport {
    /// 0 (no personal data found) – 100.
    pub risk_score: f64,
    /// low, medium, high or critical.
    pub risk_level: String,
    /// Columns found to hold personal data, most sensitive first.
    pub columns: Vec<PiiColumn>,
    /// GDPR, CCPA and HIPAA, each with whether it applies and why.
    pub regulations: Vec<Regulation>,
}

/// One column that holds personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PiiColumn {
    pub column: String,
    /// One of [`PII_KINDS`].
    pub kind: String,
    /// Non-null values that match and validate as `kind`.
    pub match_count: u64,
    pub non_null_count: u64,
    /// match_count / non_null_count (0–1).
    pub share: f64,
    /// Whether the header names the kind.
    pub header_evidence: bool,
    /// high (identifies or defrauds on its own: SSN, card, IBAN), medium (contact: email,
    /// phone, name, date of birth) or low (quasi-identifiers: IP, postcode).
    pub sensitivity: String,
    /// A few matching values, masked (`j***@e***.com`, `**** **** **** 4242`).
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regulation {
    /// GDPR, CCPA or HIPAA.
    pub name: String,
    pub applies: bool,
    /// Why it applies (or what would make it apply).
    pub reasons: Vec<String>,
    /// The columns concerned.
    pub columns: Vec<String>,
}

/// Masks a value of personal data of `kind` (one of [`PII_KINDS`]) so that it can be shown:
/// enough to recognise the shape, never enough to recover the value.
pub fn mask(kind: &str, value: &str) -> String {
    let value = value.trim();
    if value.is_empty() {
        return "*".into();
    }
    let stars = |s: &str| "*".repeat(s.chars().count().max(1));
    let keep_last_digits = |n: usize| {
        let digits = value.chars().filter(|c| is_digit(*c)).count();
        let mut seen = 0;
        value
            .chars()
            .map(|c| {
                if is_digit(c) {
                    seen += 1;
                    if seen + n > digits { c } else { '*' }
                } else {
                    c
                }
            })
            .collect::<String>()
    };
    match kind {
        "email" => match value.rsplit_once('@') {
            Some((local, domain)) => {
                let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
                let (host, tld) = domain.rsplit_once('.').unwrap_or((domain, ""));
                let tld = if tld.is_empty() { String::new() } else { format!(".{tld}") };
                format!("{}***@{}***{tld}", first(local), first(host))
            }
            None => stars(value),
        },
        // A value that is not written like its column's kind (an e-mail or free text in a
        // column found to hold phone numbers) keeps nothing: masking its digits alone would
        // show the rest.
        "credit_card" | "ssn" | "phone" | "date_of_birth" if !digit_shaped(value) => stars(value),
        "credit_card" | "ssn" => keep_last_digits(4),
        "phone" => keep_last_digits(2),
        "iban" => {
            let chars: Vec<char> = value.chars().filter(|c| !c.is_whitespace()).collect();
            if chars.len() <= 6 {
                return stars(value);
            }
            let head: String = chars[..2].iter().collect();
            let tail: String = chars[chars.len() - 4..].iter().collect();
            format!("{head}{}{tail}", "*".repeat(chars.len() - 6))
        }
        "ip" => {
            if let Some((first, _)) = value.split_once('.') {
                format!("{first}.***.***.***")
            } else if let Some((first, _)) = value.split_once(':') {
                format!("{first}:****:****:****")
            } else {
                stars(value)
            }
        }
        "postcode" => {
            let head: String = value.chars().take(2).collect();
            let rest: String = value.chars().skip(2).map(|c| if c == ' ' { ' ' } else { '*' }).collect();
            format!("{head}{rest}")
        }
        "date_of_birth" => value.chars().map(|c| if is_digit(c) { '*' } else { c }).collect(),
        "person_name" => value
            .split_whitespace()
            .map(|word| {
                let mut chars = word.chars();
                match chars.next() {
                    Some(first) => format!("{first}{}", "*".repeat(chars.count().max(1))),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => {
            let first: String = value.chars().take(1).collect();
            format!("{first}{}", "*".repeat(value.chars().count().saturating_sub(1).max(2)))
        }
    }
}

/// `text` with the personal data written inside it masked: e-mail addresses, IBANs, and runs
/// of nine digits or more (phone, card and identity numbers, with up to two spaces, dots,
/// dashes, slashes or brackets between two digits: `030/4123401`, `(0)30 1234`; three, as in
/// `2022 / 2023` or `2024-01-01 - 2024-03-31`, separate two numbers). For what is sent to a language model from columns no agent found personal:
/// a free-text note that quotes a customer's address and phone.
pub fn mask_embedded(text: &str) -> std::borrow::Cow<'_, str> {
    use std::sync::LazyLock;
    static EMBEDDED: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(concat!(
            r"(?P<email>[\w.+%-]+[@\x{FF20}][\w-]+(\.[\w-]+)+)",
            r"|(?P<iban>\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b)",
            // Between two digits, up to two of: blanks, brackets, dots, slashes, dashes and
            // minus signs of any width, middle dots (not underscores: `IMG_20240115_1234`), the katakana long mark
            // (`090ー1234ー5678`), and the invisible characters `explain` also reads as nothing
            // (soft hyphens, joiners, bidi marks, variation selectors).
            r"|(?P<digits>\+?\d(?:[\t\p{Z}()./\-\x{00AD}\x{00B7}\x{034F}\x{180E}\x{2010}-\x{2015}\x{2212}\x{30FB}\x{30FC}\x{FF0D}\x{FF0E}\x{FF0F}\x{FF08}\x{FF09}\x{200B}-\x{200F}\x{202A}-\x{202E}\x{2060}-\x{2064}\x{2066}-\x{2069}\x{FE00}-\x{FE0F}\x{FEFF}]{0,2}\d){8,})",
        ))
        .expect("a valid pattern")
    });
    if !text.contains(['@', '\u{FF20}']) && text.chars().filter(|c| is_digit(*c)).count() < 9 {
        return text.into();
    }
    // A run of digits that is a date, or a date and the hour of a time that follows
    // (`2024-01-05 10`, stopped by its colon), is a date, and so are dates one after the other
    // (`1/2/2024 1/3/2024`); `06.12.34.56.78` is a phone.
    static DATE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"^((\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})([ T]\d{1,2})?(\s*[-/]?\s*|$))+$",
        )
        .expect("a valid pattern")
    });
    EMBEDDED.replace_all(text, |c: &regex::Captures| {
        if let Some(m) = c.name("email") {
            mask("email", m.as_str())
        } else if let Some(m) = c.name("iban") {
            mask("iban", m.as_str())
        } else if DATE.is_match(&c[0]) {
            c[0].to_string()
        } else {
            mask("phone", &c[0])
        }
    })
}

/// Whether `value` is written as the digit kinds are (cards, SSNs, phones, birth dates): no
/// `@`, and no more ASCII letters than digits (`ext. 89`, `Mar 7 1984` are; an e-mail
/// address or a sentence is not).
fn digit_shaped(value: &str) -> bool {
    let letters = value.chars().filter(char::is_ascii_alphabetic).count();
    let digits = value.chars().filter(|c| is_digit(*c)).count();
    !value.contains('@') && letters <= digits
}

/// Whether `c` is a decimal digit of any script (Unicode's Nd: `7`, full-width `７`,
/// Arabic-Indic `٧`): a phone number written in full-width digits is masked as one written
/// in ASCII. (The co-pilot's SQL view calls these functions: `engine::sandbox`.)
fn is_digit(c: char) -> bool {
    use std::sync::LazyLock;
    static ND: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"^\p{Nd}$").expect("a valid pattern"));
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric() && ND.is_match(c.encode_utf8(&mut [0; 4])))
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_keep_the_shape_but_not_the_value() {
        assert_eq!(mask("email", "jane.doe@example.com"), "j***@e***.com");
        assert_eq!(mask("credit_card", "4242 4242 4242 4242"), "**** **** **** 4242");
        assert_eq!(mask("ssn", "123-45-6789"), "***-**-6789");
        assert_eq!(mask("phone", "+44 20 7946 0958"), "+** ** **** **58");
        assert_eq!(mask("iban", "GB82 WEST 1234 5698 7654 32"), "GB****************5432");
        assert_eq!(mask("ip", "192.168.1.20"), "192.***.***.***");
        assert_eq!(mask("postcode", "SW1A 1AA"), "SW** ***");
        assert_eq!(mask("date_of_birth", "1984-03-07"), "****-**-**");
        assert_eq!(mask("person_name", "Jane Doe"), "J*** D**");
        assert_eq!(mask("other", "é"), "é**");
        for kind in super::PII_KINDS {
            assert_eq!(mask(kind, " "), "*", "{kind}");
        }
    }

    #[test]
    fn personal_data_inside_free_text_is_masked() {
        use super::mask_embedded;
        assert_eq!(
            mask_embedded("Reached Maria at maria.garcia10@mailhost.com / +44 20 7946 0010"),
            "Reached Maria at m***@m***.com / +** ** **** **10"
        );
        assert_eq!(
            mask_embedded("paid from GB82 WEST 1234 5698 7654 32 today"),
            "paid from GB****************5432 today"
        );
        assert_eq!(mask_embedded("card 4242-4242-4242-4242"), "card ****-****-****-**42");
        // Phones written like the start of a date are phones.
        assert_eq!(mask_embedded("tel 06.12.34.56.78"), "tel **.**.**.**.78");
        assert_eq!(mask_embedded("01-23-45-67-89"), "**-**-**-**-89");
        assert_eq!(mask_embedded("12-34-5678-9012-3456"), "**-**-****-****-**56");
        // Slashes, as German numbers are written.
        let masked = mask_embedded("call 030/4123401 or 0171/1000000, Tel. 0049 (0)30/1234 5600");
        for shown in ["4123401", "1000000", "1234 5600"] {
            assert!(!masked.contains(shown), "{masked}");
        }
        // Short numbers, dates and amounts stay.
        for kept in [
            "order 12345 on 2024-01-05 for 1,234.50",
            "id 12345678",
            "no data",
            "at 2024-01-05 10:00:00 or 05/01/2024 10:00",
            "from 2024/01/05 to 2024/02/05, 1/2 of 3/4",
            // Ranges and ratios: numbers separated, not one number.
            "orders 2024-01-01 - 2024-03-31",
            "from 01/01/2024 - 31/03/2024",
            "10/2024 - 12/2024",
            "1/2/2024 1/3/2024",
            "years 2022 / 2023 / 2024",
            "what is 150000 / 3000",
        ] {
            assert_eq!(mask_embedded(kept), kept);
        }
        assert!(matches!(mask_embedded("plain"), std::borrow::Cow::Borrowed(_)));
        // Digits of other scripts are digits: a phone in full-width digits is masked too.
        assert_eq!(mask_embedded("tel ０２０ ７９４６ ００１０"), "tel *** **** **１０");
        assert_eq!(mask_embedded("رقم ٠١٢٣٤٥٦٧٨٩"), "رقم ********٨٩");
        assert_eq!(mask_embedded("le ２０２４-０１-０５"), "le ２０２４-０１-０５");
        // Separators of other scripts and invisible ones: full-width hyphens, ideographic
        // spaces, no-break spaces, en dashes, zero-width spaces.
        assert_eq!(mask_embedded("０２０－７９４６－００１０"), "***－****－**１０");
        assert_eq!(mask_embedded("０３\u{3000}１２３４\u{3000}５６７８"), "**\u{3000}****\u{3000}**７８");
        assert_eq!(mask_embedded("020\u{a0}7946\u{a0}0010"), "***\u{a0}****\u{a0}**10");
        assert_eq!(mask_embedded("020–7946–0010"), "***–****–**10");
        assert_eq!(mask_embedded("020\u{200B}7946\u{200B}0010"), "***\u{200B}****\u{200B}**10");
        // Soft hyphens, invisible separators, bidi marks, the katakana long mark, minus signs,
        // middle dots and underscores between digits; a full-width at sign.
        for written in [
            "4111\u{AD}1111\u{AD}1111\u{AD}1111",
            "4111\u{2063}1111\u{2063}1111\u{2063}1111",
            "050\u{200E}-123\u{200E}-4567",
            "090ー1234ー5678",
            "030−41234010",
            "93·123·45·67",
        ] {
            let masked = mask_embedded(written);
            assert!(
                !masked.contains("1234") && !masked.contains("1111") && !masked.contains("123·45"),
                "{written}: {masked}"
            );
        }
        assert_eq!(mask_embedded("jane.doe\u{FF20}example.com"), "*".repeat(20));
        // Underscores join names and dates, not numbers.
        for kept in ["IMG_20240115_123456.jpg", "export_2024_01_15_1030", "reading_20240115_0930"] {
            assert_eq!(mask_embedded(kept), kept);
        }
    }

    #[test]
    fn digits_of_other_scripts_are_masked_as_digits() {
        assert_eq!(mask("phone", "+４４ ２０ ７９４６ ０９５８"), "+** ** **** **５８");
        assert_eq!(mask("credit_card", "٤٢٤٢ ٤٢٤٢ ٤٢٤٢ ٤٢٤٢"), "**** **** **** ٤٢٤٢");
        assert_eq!(mask("date_of_birth", "１９８４－０３－０７"), "****－**－**");
        // Other numeric characters are not decimal digits.
        assert_eq!(mask("phone", "½ 12"), "½ 12");
    }

    #[test]
    fn a_value_not_written_like_its_kind_keeps_nothing() {
        for kind in ["phone", "credit_card", "ssn", "date_of_birth"] {
            assert_eq!(mask(kind, "person01@example.org"), "*".repeat(20), "{kind}");
            assert_eq!(mask(kind, "call Maria on 0207"), "*".repeat(18), "{kind}");
        }
        assert_eq!(mask("phone", "+1 415 555 2671 ext. 89"), "+* *** *** **** ext. 89");
        assert_eq!(mask("date_of_birth", "Mar 7 1984"), "Mar * ****");
    }
}
