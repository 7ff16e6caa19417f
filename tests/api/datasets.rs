//! Uploading datasets: every format, bad input, previews, rejects, deletion and tenancy.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::both_stores;
use crate::helpers::{TestApp, error_code};

const DATASET: &str = "query($id: ID!) { dataset(id: $id) { id name format rowCount columnCount rejectedRowCount columns { name type } preview(limit: 10) versions { id } parent { id } rejects { line column reason } } }";

fn parquet_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "COPY (SELECT range AS id, 'name ' || range AS label, range * 1.5 AS score FROM range(1000)) TO '{}' (FORMAT parquet)",
        path.display()
    ))
    .unwrap();
    std::fs::read(path).unwrap()
}

/// A workbook with a "Sales" sheet (text, numbers, dates, a formula with its cached value)
/// and an "Other" sheet.
fn workbook_bytes() -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
    let mut workbook = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let sales = workbook.add_worksheet();
    sales.set_name("Sales").unwrap();
    for (col, header) in ["region", "amount", "day", "double"].iter().enumerate() {
        sales.write_string(0, col as u16, *header).unwrap();
    }
    for (i, (region, amount, day)) in [("north", 10.5, 2), ("south, east", 20.0, 3)].iter().enumerate() {
        let row = i as u32 + 1;
        sales.write_string(row, 0, *region).unwrap();
        sales.write_number(row, 1, *amount).unwrap();
        sales
            .write_datetime_with_format(row, 2, ExcelDateTime::from_ymd(2024, 1, *day).unwrap(), &date)
            .unwrap();
        sales
            .write_formula(
                row,
                3,
                Formula::new(format!("=B{}*2", row + 1)).set_result((amount * 2.0).to_string()),
            )
            .unwrap();
    }
    let other = workbook.add_worksheet();
    other.set_name("Other").unwrap();
    other.write_string(0, 0, "only").unwrap();
    other.write_number(1, 0, 1.0).unwrap();
    workbook.save_to_buffer().unwrap()
}

async fn get(app: &TestApp, token: &str, id: &Value) -> Value {
    app.graphql(Some(token), DATASET, json!({ "id": id })).await
}

fn column_types(dataset: &Value) -> Vec<(String, String)> {
    dataset["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["type"].as_str().unwrap().to_string()))
        .collect()
}

both_stores! {
    async fn list_arguments_left_out_or_null_take_their_defaults(app) {
        // A client's optional variables (`$first: Int`), as the frontend's sketch declares
        // them, may be absent or null: the argument's default applies.
        let token = app.token_for("ada@example.com").await;
        let mut csv = String::from("n\n");
        for i in 0..120 {
            csv.push_str(&format!("{i}\n"));
        }
        let dataset = app.upload_ok(&token, "n.csv", csv.as_bytes()).await;
        let query = "query($id: ID!, $first: Int, $limit: Int, $offset: Int, $format: DownloadFormat) { \
                     datasets(first: $first) { nodes { id } } dataset(id: $id) { preview(limit: $limit, offset: $offset) \
                     rejects(first: $first) { line } download(format: $format) { url } } \
                     jobs(first: $first) { totalCount } conversations(first: $first) { totalCount } }";
        for variables in [json!({ "id": dataset["id"] }), json!({ "id": dataset["id"], "first": null, "limit": null, "offset": null, "format": null })] {
            let body = app.graphql(Some(&token), query, variables.clone()).await;
            assert!(body["errors"].is_null(), "{variables}: {body}");
            assert_eq!(body["data"]["datasets"]["nodes"].as_array().unwrap().len(), 1);
            let preview = body["data"]["dataset"]["preview"].as_array().unwrap();
            assert_eq!(preview.len(), 50, "preview's default limit");
            assert_eq!(preview[0]["n"], 0, "and offset");
            assert!(body["data"]["dataset"]["download"]["url"].as_str().unwrap().contains("/downloads/"));
        }
        // Given values still count, and bad ones are still refused.
        let body = app.graphql(Some(&token), query, json!({ "id": dataset["id"], "limit": 3, "offset": 100 })).await;
        assert_eq!(body["data"]["dataset"]["preview"], json!([{ "n": 100 }, { "n": 101 }, { "n": 102 }]), "{body}");
        let body = app.graphql(Some(&token), query, json!({ "id": dataset["id"], "offset": -1 })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }

    async fn csv_uploads_are_ingested_with_types_hash_and_preview(app) {
        let token = app.token_for("ada@example.com").await;
        let csv = b"id,name,score,day\n1,Ada,9.5,2024-01-02\n2,Bob,7.25,2024-02-03\n3,Cy,,2024-03-04\n";
        let dataset = app.upload_ok(&token, "scores.csv", csv).await;
        assert_eq!(dataset["format"], "csv");
        assert_eq!(dataset["name"], "scores.csv");
        assert_eq!(dataset["rowCount"], 3.0);
        assert_eq!(dataset["columnCount"], 4);
        assert_eq!(dataset["sizeBytes"], csv.len() as f64);
        assert_eq!(dataset["sha256"], format!("{:x}", Sha256::digest(csv)));
        assert_eq!(
            column_types(&dataset),
            vec![("id".into(), "BIGINT".into()), ("name".into(), "VARCHAR".into()), ("score".into(), "DOUBLE".into()), ("day".into(), "DATE".into())]
        );
        let body = get(&app, &token, &dataset["id"]).await;
        let preview = &body["data"]["dataset"]["preview"];
        assert_eq!(preview[0], json!({ "id": 1, "name": "Ada", "score": 9.5, "day": "2024-01-02" }), "{body}");
        assert_eq!(preview[2]["score"], Value::Null);
        assert_eq!(body["data"]["dataset"]["versions"], json!([{ "id": dataset["id"] }]));
        assert_eq!(body["data"]["dataset"]["parent"], Value::Null);
        let page = app
            .graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { preview(limit: 1, offset: 1) } }", json!({ "id": dataset["id"] }))
            .await;
        assert_eq!(page["data"]["dataset"]["preview"], json!([{ "id": 2, "name": "Bob", "score": 7.25, "day": "2024-02-03" }]));
        assert!(app.files_under("datasets/.uploads").is_empty(), "upload left behind");
    }

    async fn every_format_is_recognised_by_content(app) {
        let token = app.token_for("ada@example.com").await;
        let cases: Vec<(&str, Vec<u8>, &str, f64)> = vec![
            ("tabs.tsv", b"a\tb\n1\tx\n2\ty\n".to_vec(), "tsv", 2.0),
            ("semicolons.csv", b"a;b\n1;x\n2;y\n".to_vec(), "csv", 2.0),
            ("array.json", br#"[{"a": 1, "b": "x"}, {"a": 2, "b": null}]"#.to_vec(), "json", 2.0),
            ("lines.ndjson", b"{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3}\n".to_vec(), "ndjson", 3.0),
            ("table.parquet", parquet_bytes(), "parquet", 1000.0),
            // The name lies; the content decides.
            ("really-csv.json", b"a,b\n1,2\n".to_vec(), "csv", 1.0),
            ("really-json.csv", br#"[{"a": 1}]"#.to_vec(), "json", 1.0),
            ("bom.csv", b"\xEF\xBB\xBFa,b\n1,2\n".to_vec(), "csv", 1.0),
            ("header-only.csv", b"a,b,c\n".to_vec(), "csv", 0.0),
        ];
        for (filename, bytes, format, rows) in cases {
            let dataset = app.upload_ok(&token, filename, &bytes).await;
            assert_eq!((dataset["format"].as_str().unwrap(), dataset["rowCount"].as_f64().unwrap()), (format, rows), "{filename}: {dataset}");
        }
        let bom = app.upload_ok(&token, "bom2.csv", b"\xEF\xBB\xBFa,b\n1,2\n").await;
        assert_eq!(bom["columns"][0]["name"], "a", "the BOM is not part of the first name");
    }

    async fn excel_workbooks_are_read_sheet_by_sheet(app) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "book.xlsx", &workbook_bytes()).await;
        assert_eq!(dataset["format"], "xlsx");
        assert_eq!(dataset["rowCount"], 2.0);
        assert_eq!(
            column_types(&dataset),
            // The cached formula results are 21 and 40: whole numbers.
            vec![("region".into(), "VARCHAR".into()), ("amount".into(), "DOUBLE".into()), ("day".into(), "DATE".into()), ("double".into(), "BIGINT".into())]
        );
        let body = get(&app, &token, &dataset["id"]).await;
        assert_eq!(body["data"]["dataset"]["preview"][1], json!({ "region": "south, east", "amount": 20.0, "day": "2024-01-03", "double": 40 }), "{body}");

        let operations = |sheet: &str| json!({
            "query": "mutation($file: Upload!, $sheet: String) { uploadDataset(file: $file, sheet: $sheet) { rowCount columns { name } } }",
            "variables": { "file": null, "sheet": sheet },
        });
        let send = |sheet: &'static str| {
            let form = reqwest::multipart::Form::new()
                .text("operations", operations(sheet).to_string())
                .text("map", json!({ "0": ["variables.file"] }).to_string())
                .part("0", reqwest::multipart::Part::bytes(workbook_bytes()).file_name("book.xlsx"));
            app.client.post(format!("{}/graphql", app.address)).bearer_auth(&token).multipart(form).send()
        };
        let other: Value = send("Other").await.unwrap().json().await.unwrap();
        assert_eq!(other["data"]["uploadDataset"], json!({ "rowCount": 1.0, "columns": [{ "name": "only" }] }), "{other}");
        let missing: Value = send("Nope").await.unwrap().json().await.unwrap();
        assert_eq!(error_code(&missing), "BAD_USER_INPUT");
        assert!(missing["errors"][0]["message"].as_str().unwrap().contains("Sales"), "{missing}");
    }

    async fn text_cells_of_a_workbook_stay_text(app) {
        // Cells typed as text that look like numbers (`1.10`, `1E3`) became 1.1 and 1000.
        let token = app.token_for("ada@example.com").await;
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (col, name) in ["version", "code", "n"].iter().enumerate() {
            sheet.write_string(0, col as u16, *name).unwrap();
        }
        for (row, (version, code, n)) in [("1.10", "1E3", 1.5), ("2.0", "2E5", 2.0)].iter().enumerate() {
            let row = row as u32 + 1;
            sheet.write_string(row, 0, *version).unwrap();
            sheet.write_string(row, 1, *code).unwrap();
            sheet.write_number(row, 2, *n).unwrap();
        }
        let dataset = app.upload_ok(&token, "versions.xlsx", &book.save_to_buffer().unwrap()).await;
        let types: Vec<(&str, &str)> = dataset["columns"].as_array().unwrap().iter().map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap())).collect();
        assert_eq!(types, [("version", "VARCHAR"), ("code", "VARCHAR"), ("n", "DOUBLE")], "{dataset}");
        let body = app.graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { preview } }", json!({ "id": dataset["id"] })).await;
        assert_eq!(body["data"]["dataset"]["preview"][0], json!({ "version": "1.10", "code": "1E3", "n": 1.5 }), "{body}");
    }

    async fn a_workbook_whose_parts_contradict_each_other_is_bad_input(app) {
        // A cell naming shared string 7 of a table of two: calamine panics reading it.
        use std::io::{Read, Write};
        let token = app.token_for("ada@example.com").await;
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "name").unwrap();
        sheet.write_string(1, 0, "Ada").unwrap();
        let original = book.save_to_buffer().unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(original)).unwrap();
        let mut damaged = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let mut patched = false;
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).unwrap();
            let mut content = String::new();
            entry.read_to_string(&mut content).unwrap();
            if entry.name() == "xl/worksheets/sheet1.xml" {
                assert!(content.contains("<v>1</v>"), "{content}");
                content = content.replace("<v>1</v>", "<v>7</v>");
                patched = true;
            }
            damaged.start_file(entry.name(), zip::write::SimpleFileOptions::default()).unwrap();
            damaged.write_all(content.as_bytes()).unwrap();
        }
        assert!(patched);
        let bytes = damaged.finish().unwrap().into_inner();
        let (status, body) = app.upload(&token, "damaged.xlsx", bytes, None).await;
        assert_eq!((status, error_code(&body)), (200, "BAD_USER_INPUT"), "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("workbook could not be read"), "{body}");
        // Nothing was stored, and the server goes on.
        let listed = app.graphql(Some(&token), "{ datasets { totalCount } }", json!({})).await;
        assert_eq!(listed["data"]["datasets"]["totalCount"], 0, "{listed}");
    }

    async fn a_first_row_of_numbers_is_read_as_the_header_when_asked(app) {
        let token = app.token_for("ada@example.com").await;
        let years = b"2022,2023,2024\n10,11,12\n20,21,22\n".to_vec();
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (row, values) in [[2022.0, 2023.0], [10.0, 11.0]].iter().enumerate() {
            for (col, value) in values.iter().enumerate() {
                sheet.write_number(row as u32, col as u16, *value).unwrap();
            }
        }
        let workbook = book.save_to_buffer().unwrap();
        let send = |file: &'static str, bytes: Vec<u8>, header: Value| {
            let operations = json!({
                "query": "mutation($file: Upload!, $header: Boolean) { uploadDataset(file: $file, header: $header) { rowCount columns { name } notices } }",
                "variables": { "file": null, "header": header },
            });
            let form = reqwest::multipart::Form::new()
                .text("operations", operations.to_string())
                .text("map", json!({ "0": ["variables.file"] }).to_string())
                .part("0", reqwest::multipart::Part::bytes(bytes).file_name(file));
            let request = app.client.post(format!("{}/graphql", app.address)).bearer_auth(&token).multipart(form).send();
            async move { request.await.unwrap().json::<Value>().await.unwrap() }
        };
        let names = |body: &Value| -> Vec<String> {
            body["data"]["uploadDataset"]["columns"].as_array().unwrap_or_else(|| panic!("{body}")).iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
        };
        // Detected: a row of numbers is data, and the notice says how to say otherwise.
        let detected = send("years.csv", years.clone(), Value::Null).await;
        assert_eq!(detected["data"]["uploadDataset"]["rowCount"], 3.0, "{detected}");
        assert!(detected["data"]["uploadDataset"]["notices"][0].as_str().unwrap().contains("header: true"), "{detected}");
        // Asked: the years name the columns, in a CSV and in a workbook.
        let csv = send("years.csv", years.clone(), json!(true)).await;
        assert_eq!((csv["data"]["uploadDataset"]["rowCount"].clone(), names(&csv)), (json!(2.0), vec!["2022".to_string(), "2023".into(), "2024".into()]), "{csv}");
        let xlsx = send("years.xlsx", workbook, json!(true)).await;
        assert_eq!((xlsx["data"]["uploadDataset"]["rowCount"].clone(), names(&xlsx)), (json!(1.0), vec!["2022".to_string(), "2023".into()]), "{xlsx}");
        // And a first row of names can be read as data.
        let headerless = send("names.csv", b"a,b\nc,d\n".to_vec(), json!(false)).await;
        assert_eq!(headerless["data"]["uploadDataset"]["rowCount"], 2.0, "{headerless}");
        // JSON names its own columns: the option is ignored, and said so (a client cannot know
        // the format, recognised from the bytes, before it uploads).
        let json_file = send("rows.json", br#"[{"a": 1}]"#.to_vec(), json!(true)).await;
        assert_eq!(json_file["data"]["uploadDataset"]["rowCount"], 1.0, "{json_file}");
        let notices = json_file["data"]["uploadDataset"]["notices"].to_string();
        assert!(notices.contains("header was ignored"), "{json_file}");
    }

    async fn odd_headers_are_made_unique_and_reported(app, &[("DUCKDB_MEMORY_LIMIT", "1GB")]) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "dups.csv", b"id,id,,total\n1,2,3,4\n").await;
        let names: Vec<&str> = dataset["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["id", "id_1", "column2", "total"]);
        let notices = dataset["notices"].as_array().unwrap();
        assert_eq!(notices.len(), 2, "{dataset}");
        assert!(notices[0].as_str().unwrap().contains("id_1"));

        let wide_header: Vec<String> = (0..10_000).map(|i| format!("c{i}")).collect();
        let wide_row: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        let wide = format!("{}\n{}\n{}\n", wide_header.join(","), wide_row.join(","), wide_row.join(","));
        let dataset = app.upload_ok(&token, "wide.csv", wide.as_bytes()).await;
        assert_eq!((dataset["columnCount"].as_i64(), dataset["rowCount"].as_f64()), (Some(10_000), Some(2.0)));
        // Too many typed columns for each value to be checked against its type: said so.
        let notices = dataset["notices"].as_array().unwrap();
        assert_eq!(notices.len(), 1, "{dataset}");
        assert!(notices[0].as_str().unwrap().contains("10000 typed columns"), "{dataset}");
    }

    async fn a_file_too_wide_for_the_memory_limit_gets_a_clear_error(app) {
        let token = app.token_for("ada@example.com").await;
        let header: Vec<String> = (0..10_000).map(|i| format!("c{i}")).collect();
        let row: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        let wide = format!("{}\n{}\n", header.join(","), row.join(","));
        let (_, body) = app.upload(&token, "wide.csv", wide.into_bytes(), None).await;
        assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("DUCKDB_MEMORY_LIMIT"));
        assert!(app.files_under("datasets").is_empty());
    }

    async fn text_encodings_are_decoded(app) {
        let token = app.token_for("ada@example.com").await;
        let latin1 = app.upload_ok(&token, "latin1.csv", b"name,city\nJos\xe9,M\xfcnchen\n").await;
        let body = get(&app, &token, &latin1["id"]).await;
        assert_eq!(body["data"]["dataset"]["preview"][0], json!({ "name": "José", "city": "München" }), "{body}");
        let mut utf16 = vec![0xFF, 0xFE];
        // (Excel's "Unicode text"; an emoji, beyond the BMP, was refused by DuckDB's UTF-16 reader.)
        for unit in "name,city\nJosé 😀,Zürich\n".encode_utf16() {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        let dataset = app.upload_ok(&token, "utf16.csv", &utf16).await;
        let body = get(&app, &token, &dataset["id"]).await;
        assert_eq!(body["data"]["dataset"]["preview"][0], json!({ "name": "José 😀", "city": "Zürich" }), "{body}");
        // Windows-1252, as Excel on Windows writes CSV: €, curly quotes and dashes (bytes that
        // Latin-1 leaves to control characters) are decoded, and nothing is left in staging.
        let cp1252 = app.upload_ok(&token, "prices.csv", b"id,price,note\n1,\x805,\x93best\x94 \x96 sale\n2,\xa310,caf\xe9\n").await;
        let body = get(&app, &token, &cp1252["id"]).await;
        let preview = &body["data"]["dataset"]["preview"];
        assert_eq!(preview[0], json!({ "id": 1, "price": "€5", "note": "“best” – sale" }), "{body}");
        assert_eq!(preview[1], json!({ "id": 2, "price": "£10", "note": "café" }), "{body}");
        let notices = cp1252["notices"].as_array().unwrap_or_else(|| panic!("{cp1252}"));
        assert!(notices.iter().any(|n| n.as_str().unwrap().contains("read as Windows-1252")), "{cp1252}");
        // After a UTF-8 byte-order mark (an editor's), the mark is not read into the first name.
        let marked = app.upload_ok(&token, "marked.csv", b"\xef\xbb\xbfid,name\n1,caf\xe9\n").await;
        let body = get(&app, &token, &marked["id"]).await;
        assert_eq!(body["data"]["dataset"]["preview"][0], json!({ "id": 1, "name": "café" }), "{body}");
        // A bracketed header, as SQL Server exports it, is CSV (it was taken for JSON).
        let bracketed = app.upload_ok(&token, "export.csv", b"[id],[name]\n1,a\n").await;
        assert_eq!((bracketed["format"].as_str(), bracketed["rowCount"].as_f64()), (Some("csv"), Some(1.0)), "{bracketed}");
        // JSON, too (it was taken for delimited text).
        let json = app.upload_ok(&token, "prices.json", b"[{\"price\": \"\x805\", \"city\": \"M\xfcnchen\"}]").await;
        assert_eq!(json["format"], "json", "{json}");
        let body = get(&app, &token, &json["id"]).await;
        assert_eq!(body["data"]["dataset"]["preview"][0], json!({ "price": "€5", "city": "München" }), "{body}");
        // UTF-16 JSON, as PowerShell writes it (it was taken for CSV of no rows).
        for (name, text, format) in [("u.json", "[{\"name\": \"José\", \"n\": 1}, {\"name\": \"Ann\", \"n\": 2}]", "json"),
                                     ("u.ndjson", "{\"name\": \"José\", \"n\": 1}\r\n{\"name\": \"Ann\", \"n\": 2}\r\n", "ndjson")] {
            let mut bytes = vec![0xFF, 0xFE];
            bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
            let dataset = app.upload_ok(&token, name, &bytes).await;
            assert_eq!((dataset["format"].as_str(), dataset["rowCount"].as_f64()), (Some(format), Some(2.0)), "{dataset}");
            let body = get(&app, &token, &dataset["id"]).await;
            assert_eq!(body["data"]["dataset"]["preview"][0], json!({ "name": "José", "n": 1 }), "{body}");
        }
        assert!(app.files_under("datasets/.staging").is_empty());
        let kept = app.files_under("datasets");
        assert!(!kept.iter().any(|f| f.ends_with("text.csv") || f.ends_with("text.json")), "{kept:?}");
    }

    async fn malformed_rows_are_kept_and_reported(app) {
        let token = app.token_for("ada@example.com").await;
        let csv = b"a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,12\n".to_vec();
        let dataset = app.upload_ok(&token, "ragged.csv", &csv).await;
        assert_eq!(dataset["rowCount"], 2.0, "{dataset}");
        assert_eq!(dataset["rejectedRowCount"], 2.0, "{dataset}");
        let body = get(&app, &token, &dataset["id"]).await;
        let rejects = body["data"]["dataset"]["rejects"].as_array().unwrap().clone();
        let lines: Vec<f64> = rejects.iter().map(|r| r["line"].as_f64().unwrap()).collect();
        assert_eq!(lines, vec![3.0, 5.0], "{body}");
        assert!(rejects.iter().all(|r| !r["reason"].as_str().unwrap().is_empty()));

        // An unterminated quote: DuckDB then reads quotes literally; the row that no longer
        // fits is reported, and no line is lost.
        let quote = app.upload_ok(&token, "quote.csv", b"a,b\n1,\"x\"\n2,\"never closed\n3,y\n4,\"z, w\"\n5,v\n").await;
        assert_eq!(quote["rejectedRowCount"], 1.0, "{quote}");
        assert_eq!(quote["rowCount"], 4.0, "{quote}");
        let long_line = format!("a,b\n1,{}\n2,z\n", "x".repeat(5 * 1024 * 1024));
        let long = app.upload_ok(&token, "long.csv", long_line.as_bytes()).await;
        assert_eq!(long["rowCount"].as_f64().unwrap() + long["rejectedRowCount"].as_f64().unwrap(), 2.0, "{long}");
    }

    async fn preview_rows_keep_the_column_order(app) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "order.csv", b"zeta,alpha,mid\n1,2,3\n").await;
        // The body as sent: a JSON value parsed here would sort its keys again.
        let body = app
            .client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(&token)
            .json(&json!({ "query": "query($id: ID!) { dataset(id: $id) { preview } }", "variables": { "id": dataset["id"] } }))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains(r#"[{"zeta":1,"alpha":2,"mid":3}]"#), "{body}");
    }

    async fn values_after_the_sampled_rows_are_kept_as_written(app) {
        // DuckDB types a column from its first 20,480 rows; later values that do not fit
        // were rounded (12.75 → 13), converted (0x1F → 31), truncated (the time of day
        // dropped) or rejected with their row. Their columns are now widened instead.
        let token = app.token_for("ada@example.com").await;
        let mut csv = String::from("id,amount,code,day,count\n");
        for i in 0..25_000 {
            csv.push_str(&format!("{i},{},{},2024-01-{:02},{}\n", i % 50, i % 7, i % 28 + 1, i % 3));
        }
        csv.push_str("25000,12.75,0x1F,2024-02-01 13:45:00,n/a\n");
        let dataset = app.upload_ok(&token, "late.csv", csv.as_bytes()).await;
        assert_eq!((dataset["rowCount"].as_f64(), dataset["rejectedRowCount"].as_f64()), (Some(25_001.0), Some(0.0)));
        let expected = [("id", "BIGINT"), ("amount", "DOUBLE"), ("code", "VARCHAR"), ("day", "VARCHAR"), ("count", "VARCHAR")];
        assert_eq!(column_types(&dataset), expected.map(|(n, t)| (n.to_string(), t.to_string())).to_vec());
        let notices: Vec<&str> = dataset["notices"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
        assert_eq!(notices.len(), 4, "{notices:?}");
        assert!(notices[0].starts_with("column \"amount\" is read as DOUBLE"), "{notices:?}");
        let body = app
            .graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { preview(limit: 2, offset: 24999) } }", json!({ "id": dataset["id"] }))
            .await;
        assert_eq!(
            body["data"]["dataset"]["preview"],
            json!([
                { "id": 24999, "amount": 49.0, "code": "2", "day": "2024-01-24", "count": "0" },
                { "id": 25000, "amount": 12.75, "code": "0x1F", "day": "2024-02-01 13:45:00", "count": "n/a" }
            ]),
            "{body}"
        );
    }

    async fn bad_files_get_clear_errors_and_leave_nothing(app) {
        let token = app.token_for("ada@example.com").await;
        let mut truncated = parquet_bytes();
        truncated.truncate(truncated.len() / 2);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty.csv", Vec::new(), "empty"),
            ("binary.csv", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00".to_vec(), "binary"),
            ("truncated.parquet", truncated, "truncated"),
            ("numbers.json", b"[1, 2, 3]".to_vec(), "JSON"),
            // A footer that is not Thrift: it was an internal error.
            ("footer.parquet", [&b"PAR1"[..], &[0u8; 100], b"\x10\x00\x00\x00PAR1"].concat(), "Parquet"),
            ("broken.json", br#"[{"a": 1}, {"a": "#.to_vec(), "JSON"),
            ("sheet.xlsx", b"PK\x03\x04\x14\x00\x00\x00".to_vec(), "zip"),
        ];
        for (filename, bytes, hint) in cases {
            let (status, body) = app.upload(&token, filename, bytes, None).await;
            assert_eq!(status, 200, "{filename}");
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{filename}: {body}");
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(message.to_lowercase().contains(&hint.to_lowercase()), "{filename}: {message}");
            assert!(!message.contains(app.data_dir.path().to_str().unwrap()), "a server path leaked: {message}");
        }
        assert!(app.files_under("datasets").is_empty(), "{:?}", app.files_under("datasets"));
        let list = app.graphql(Some(&token), "{ datasets { totalCount } }", json!({})).await;
        assert_eq!(list["data"]["datasets"]["totalCount"], 0);
    }

    async fn uploads_over_the_limit_are_refused_and_removed(app, &[("MAX_UPLOAD_SIZE", "64KiB")]) {
        let token = app.token_for("ada@example.com").await;
        let big = format!("a,b\n{}", "1,2\n".repeat(40_000)).into_bytes();
        let (status, body) = app.upload(&token, "big.csv", big, None).await;
        assert_eq!((status, error_code(&body)), (413, "PAYLOAD_TOO_LARGE"), "{body}");
        assert!(app.files_under("datasets").is_empty(), "partial file kept: {:?}", app.files_under("datasets"));
        // Still serving, and a small file still fits.
        app.upload_ok(&token, "small.csv", b"a,b\n1,2\n").await;
    }

    async fn file_names_are_never_paths(app) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "../../etc/passwd", b"a,b\n1,2\n").await;
        assert_eq!(dataset["originalFilename"], "passwd");
        assert_eq!(dataset["name"], "passwd");
        let files = app.files_under("datasets");
        assert!(files.iter().all(|f| f.starts_with(app.data_dir.path().join("datasets"))), "{files:?}");
        assert!(!files.iter().any(|f| f.ends_with("passwd")), "{files:?}");
        let named = app.upload(&token, "x.csv", b"a\n1\n".to_vec(), Some("Quarterly sales")).await.1;
        assert_eq!(named["data"]["uploadDataset"]["name"], "Quarterly sales");
    }

    async fn an_upload_cut_off_midway_leaves_nothing(app) {
        use tokio::io::AsyncWriteExt;
        let token = app.token_for("ada@example.com").await;
        let boundary = "XyZ";
        let operations = json!({ "query": "mutation($file: Upload!) { uploadDataset(file: $file) { id } }", "variables": { "file": null } });
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\": [\"variables.file\"]}}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"cut.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\n1,2\n"
        );
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        let request = format!(
            "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n{head}",
            head.len() + 100_000
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.write_all(&vec![b'9'; 10_000]).await.unwrap();
        drop(stream);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(app.files_under("datasets").is_empty(), "{:?}", app.files_under("datasets"));
        let health = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
        assert_eq!(health.status().as_u16(), 200);
    }

    async fn datasets_are_private_to_their_owner(app) {
        let ada = app.token_for("ada@example.com").await;
        let bob = app.token_for("bob@example.com").await;
        let dataset = app.upload_ok(&ada, "ada.csv", b"secret\n42\n").await;
        let id = &dataset["id"];
        let stolen = get(&app, &bob, id).await;
        assert_eq!(error_code(&stolen), "NOT_FOUND", "{stolen}");
        let missing = get(&app, &bob, &json!(uuid::Uuid::now_v7().to_string())).await;
        assert_eq!(stolen["errors"][0]["message"], missing["errors"][0]["message"], "indistinguishable from a missing id");
        assert_eq!(error_code(&get(&app, &bob, &json!("not-an-id")).await), "NOT_FOUND");
        let delete = app.graphql(Some(&bob), "mutation($id: ID!) { deleteDataset(id: $id) }", json!({ "id": id })).await;
        assert_eq!(error_code(&delete), "NOT_FOUND");
        let list = app.graphql(Some(&bob), "{ datasets { totalCount nodes { id } } }", json!({})).await;
        assert_eq!(list["data"]["datasets"], json!({ "totalCount": 0, "nodes": [] }));
        assert_eq!(error_code(&app.graphql(None, "{ datasets { totalCount } }", json!({})).await), "UNAUTHENTICATED");
        // Refused before the body is read: nothing reaches the disk.
        let (status, anonymous) = app.upload("not-a-token", "x.csv", b"a\n1\n".to_vec(), None).await;
        assert_eq!((status, error_code(&anonymous)), (401, "UNAUTHENTICATED"));
        assert!(app.files_under("datasets/.uploads").is_empty());
        // Ada still has it.
        assert_eq!(get(&app, &ada, id).await["data"]["dataset"]["rowCount"], 1.0);
    }

    async fn datasets_list_newest_first_and_delete_removes_everything(app) {
        let token = app.token_for("ada@example.com").await;
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(app.upload_ok(&token, &format!("d{i}.csv"), b"a\n1\n").await["id"].clone());
        }
        let page = app.graphql(Some(&token), "{ datasets(first: 2) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } }", json!({})).await;
        assert_eq!(page["data"]["datasets"]["totalCount"], 3);
        assert_eq!(page["data"]["datasets"]["nodes"], json!([{ "id": ids[2] }, { "id": ids[1] }]));
        let cursor = &page["data"]["datasets"]["pageInfo"]["endCursor"];
        let rest = app.graphql(Some(&token), "query($a: String) { datasets(first: 2, after: $a) { nodes { id } pageInfo { hasNextPage } } }", json!({ "a": cursor })).await;
        assert_eq!(rest["data"]["datasets"]["nodes"], json!([{ "id": ids[0] }]));
        assert_eq!(rest["data"]["datasets"]["pageInfo"]["hasNextPage"], false);

        let before = app.files_under("datasets").len();
        let deleted = app.graphql(Some(&token), "mutation($id: ID!) { deleteDataset(id: $id) }", json!({ "id": ids[1] })).await;
        assert_eq!(deleted["data"]["deleteDataset"], true, "{deleted}");
        assert_eq!(error_code(&get(&app, &token, &ids[1]).await), "NOT_FOUND");
        assert!(app.files_under("datasets").len() < before);
        assert!(!app.files_under("datasets").iter().any(|f| f.to_string_lossy().contains(ids[1].as_str().unwrap())));
        let page = app.graphql(Some(&token), "{ datasets { totalCount } }", json!({})).await;
        assert_eq!(page["data"]["datasets"]["totalCount"], 2);
        let bad = app.graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { preview(limit: 100000) } }", json!({ "id": ids[0] })).await;
        assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    }

    async fn downloads_stream_csv_and_parquet_through_signed_links(app) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "sales.tsv", b"region\tamount\nnorth\t10\nsouth\t20\n").await;
        let links = app
            .graphql(
                Some(&token),
                "query($id: ID!) { dataset(id: $id) { csv: download { name format url expiresAt } parquet: download(format: PARQUET) { name url } } }",
                json!({ "id": dataset["id"] }),
            )
            .await;
        let csv_link = &links["data"]["dataset"]["csv"];
        assert_eq!(csv_link["name"], "sales.csv", "{links}");
        let response = app.client.get(format!("{}{}", app.address, csv_link["url"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        assert_eq!(response.headers()["content-disposition"], "attachment; filename=\"sales.csv\"");
        assert_eq!(response.text().await.unwrap(), "region,amount\nnorth,10\nsouth,20\n");
        assert!(app.files_under("datasets/.exports").is_empty(), "temporary export kept");
        // The export is kept beside the dataset and served again without re-exporting.
        let kept = app.files_under("datasets");
        assert_eq!(kept.iter().filter(|f| f.ends_with("export.csv")).count(), 1, "{kept:?}");
        let again = app.client.get(format!("{}{}", app.address, csv_link["url"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(again.text().await.unwrap(), "region,amount\nnorth,10\nsouth,20\n");

        // A name with dots keeps them in the file's name, as the link's `name` says.
        let dotted = app.upload_ok(&token, "contacts v1.2 final", b"a,b\n1,2\n").await;
        let link = app
            .graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { download { name url } } }", json!({ "id": dotted["id"] }))
            .await;
        assert_eq!(link["data"]["dataset"]["download"]["name"], "contacts v1.2 final.csv", "{link}");
        let url = link["data"]["dataset"]["download"]["url"].as_str().unwrap();
        let response = app.client.get(format!("{}{url}", app.address)).send().await.unwrap();
        assert_eq!(response.headers()["content-disposition"], "attachment; filename=\"contacts v1.2 final.csv\"");
        // A name outside ASCII keeps itself for browsers (RFC 6266 filename*).
        let french = app.upload_ok(&token, "données.csv", b"a,b\n1,2\n").await;
        let link = app
            .graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { download { url } } }", json!({ "id": french["id"] }))
            .await;
        let url = link["data"]["dataset"]["download"]["url"].as_str().unwrap();
        let response = app.client.get(format!("{}{url}", app.address)).send().await.unwrap();
        assert_eq!(
            response.headers()["content-disposition"],
            "attachment; filename=\"donn_es.csv\"; filename*=UTF-8''donn%C3%A9es.csv"
        );
        // A download that fails inside the server says which request to quote, as GraphQL does.
        for file in app.files_under("datasets") {
            if file.to_string_lossy().contains(french["id"].as_str().unwrap()) {
                std::fs::remove_file(file).unwrap();
            }
        }
        let response = app.client.get(format!("{}{url}", app.address)).send().await.unwrap();
        // (Its file gone from under the server: an internal error, logged with its cause.)
        assert_eq!(response.status().as_u16(), 500);
        let body: Value = response.json().await.unwrap();
        assert_eq!(crate::helpers::error_code(&body), "INTERNAL", "{body}");
        let id = body["errors"][0]["extensions"]["requestId"].as_str().unwrap_or_default().to_string();
        assert!(!id.is_empty() && body["errors"][0]["message"].as_str().unwrap().contains(&id), "{body}");

        let parquet_url = links["data"]["dataset"]["parquet"]["url"].as_str().unwrap();
        let bytes = app.client.get(format!("{}{parquet_url}", app.address)).send().await.unwrap().bytes().await.unwrap();
        assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));

        // Excel keeps types: numbers stay numbers, dates stay dates.
        let typed = app.upload_ok(&token, "typed.csv", b"region,amount,day,ok\nnorth,10.5,2024-01-02,true\nsouth,,2024-02-03,false\n").await;
        let link = app
            .graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { download(format: XLSX) { name url } } }", json!({ "id": typed["id"] }))
            .await;
        assert_eq!(link["data"]["dataset"]["download"]["name"], "typed.xlsx", "{link}");
        let url = link["data"]["dataset"]["download"]["url"].as_str().unwrap();
        let bytes = app.client.get(format!("{}{url}", app.address)).send().await.unwrap().bytes().await.unwrap();
        let mut workbook = calamine::open_workbook_from_rs::<calamine::Xlsx<_>, _>(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let range = calamine::Reader::worksheet_range(&mut workbook, "data").unwrap();
        let rows: Vec<Vec<String>> = range.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
        assert_eq!(rows[0], vec!["region", "amount", "day", "ok"]);
        assert_eq!(range.get((1, 1)), Some(&calamine::Data::Float(10.5)));
        assert_eq!(range.get((2, 1)), Some(&calamine::Data::Empty));
        assert_eq!(range.get((1, 3)), Some(&calamine::Data::Bool(true)));
        assert!(matches!(range.get((1, 2)), Some(calamine::Data::DateTime(d)) if d.as_datetime().unwrap().date().to_string() == "2024-01-02"));
        assert!(app.files_under("datasets/.exports").is_empty());

        // Integers a spreadsheet number would round stay exact, as text; small ones are numbers.
        let wide = app.upload_ok(&token, "ids.csv", b"id\n9007199254740993\n-9223372036854775808\n9007199254740992\n").await;
        let link = app
            .graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { download(format: XLSX) { url } } }", json!({ "id": wide["id"] }))
            .await;
        let url = link["data"]["dataset"]["download"]["url"].as_str().unwrap();
        let bytes = app.client.get(format!("{}{url}", app.address)).send().await.unwrap().bytes().await.unwrap();
        let mut workbook = calamine::open_workbook_from_rs::<calamine::Xlsx<_>, _>(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let range = calamine::Reader::worksheet_range(&mut workbook, "data").unwrap();
        assert_eq!(range.get((1, 0)), Some(&calamine::Data::String("9007199254740993".into())));
        assert_eq!(range.get((2, 0)), Some(&calamine::Data::String("-9223372036854775808".into())));
        assert_eq!(range.get((3, 0)), Some(&calamine::Data::Float(9007199254740992.0)));

        // A text longer than an Excel cell holds: a clear refusal naming the cell, not a 500.
        let long = format!("id,text\n1,short\n2,{}\n", "x".repeat(40_000));
        let long = app.upload_ok(&token, "long.csv", long.as_bytes()).await;
        let link = app
            .graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { download(format: XLSX) { url } } }", json!({ "id": long["id"] }))
            .await;
        let url = link["data"]["dataset"]["download"]["url"].as_str().unwrap();
        let response = app.client.get(format!("{}{url}", app.address)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("row 2") && message.contains("\"text\"") && message.contains("CSV"), "{message}");
        assert!(app.files_under("datasets/.exports").is_empty(), "the partial workbook is removed");
        // So is a column name that long.
        let header = format!("{},b\n1,2\n", "h".repeat(40_000));
        let header = app.upload_ok(&token, "header.csv", header.as_bytes()).await;
        let link = app
            .graphql(Some(&token), "query($id: ID!) { dataset(id: $id) { download(format: XLSX) { url } } }", json!({ "id": header["id"] }))
            .await;
        let url = link["data"]["dataset"]["download"]["url"].as_str().unwrap();
        let response = app.client.get(format!("{}{url}", app.address)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
        let body: Value = response.json().await.unwrap();
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with("the name of column \"hhh") && message.len() < 300, "{message}");

        // A forged or altered link, or an access token in its place, is refused.
        for bad in ["/downloads/forged", &format!("/downloads/{token}"), &format!("{parquet_url}x")] {
            let response = app.client.get(format!("{}{bad}", app.address)).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 401, "{bad}");
        }
        // Once the dataset is gone, so is the download.
        app.graphql(Some(&token), "mutation($id: ID!) { deleteDataset(id: $id) }", json!({ "id": dataset["id"] })).await;
        let gone = app.client.get(format!("{}{parquet_url}", app.address)).send().await.unwrap();
        assert_eq!(gone.status().as_u16(), 404);
    }

    async fn concurrent_uploads_queue_instead_of_failing(app) {
        let token = app.token_for("ada@example.com").await;
        let csv = format!("id,label\n{}", (0..50_000).map(|i| format!("{i},row {i}\n")).collect::<String>());
        let names: Vec<String> = (0..4).map(|i| format!("c{i}.csv")).collect();
        let uploads = names.iter().map(|name| app.upload(&token, name, csv.clone().into_bytes(), None));
        for (status, body) in futures_util::future::join_all(uploads).await {
            assert_eq!(status, 200);
            assert_eq!(body["data"]["uploadDataset"]["rowCount"], 50_000.0, "{body}");
        }
    }

    async fn a_json_request_cannot_smuggle_an_upload(app) {
        let token = app.token_for("ada@example.com").await;
        let body = app
            .graphql(Some(&token), "mutation($f: Upload!) { uploadDataset(file: $f) { id } }", json!({ "f": "#__graphql_file__:0" }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(body["data"].is_null());
        let list = app.graphql(Some(&token), "{ datasets { totalCount } }", json!({})).await;
        assert_eq!(list["data"]["datasets"]["totalCount"], 0);
    }

    async fn a_file_may_be_used_once_per_request(app) {
        let token = app.token_for("ada@example.com").await;
        let operations = json!({
            "query": "mutation($a: Upload!, $b: Upload!) { a: uploadDataset(file: $a) { id } b: uploadDataset(file: $b) { id } }",
            "variables": { "a": null, "b": null },
        });
        let form = reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", json!({ "0": ["variables.a", "variables.b"] }).to_string())
            .part("0", reqwest::multipart::Part::bytes(b"a\n1\n".to_vec()).file_name("x.csv"));
        let response = app.client.post(format!("{}/graphql", app.address)).bearer_auth(&token).multipart(form).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(error_code(&response.json::<Value>().await.unwrap()), "BAD_REQUEST");
        assert!(app.files_under("datasets").is_empty());
    }

    async fn a_sparse_sheet_is_refused_without_building_its_grid(app) {
        let token = app.token_for("ada@example.com").await;
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "a").unwrap();
        sheet.write_string(1_048_575, 16_383, "far away").unwrap();
        let bytes = workbook.save_to_buffer().unwrap();
        assert!(bytes.len() < 20_000);
        let (_, body) = app.upload(&token, "sparse.xlsx", bytes, None).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("spans"), "{body}");
        assert!(app.files_under("datasets").is_empty());
    }
}
