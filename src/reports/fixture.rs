// A rich synthetic report for the renderers' tests. Included (`include!`) by
// `reports::fixture` (unit tests) and by tests/report_browser.rs, each of which brings the
// domain types and `serde_json::json` into scope first, so this file names no crate path.

/// Raw personal values the fixture puts in PII columns: no rendering but the JSON may show them.
pub const RAW_PII: &[&str] =
    &["jane.doe@example.com", "+44 20 7946 0958", "123-45-6789", "Jane Doe", "221B Baker Street"];

/// The name of the hostile column.
pub const SCRIPT_COLUMN: &str = "<script>alert(1)</script>";

fn finding(code: &str, severity: &str, column: Option<&str>, message: &str) -> Finding {
    Finding {
        code: code.into(),
        severity: severity.into(),
        column: column.map(String::from),
        message: message.into(),
    }
}

fn values(pairs: &[(Option<&str>, u64)]) -> Vec<ValueCount> {
    pairs.iter().map(|(v, c)| ValueCount { value: v.map(String::from), count: *c }).collect()
}

fn bins(lower: f64, upper: f64, counts: &[u64]) -> Vec<HistogramBin> {
    let width = (upper - lower) / counts.len() as f64;
    counts
        .iter()
        .enumerate()
        .map(|(i, c)| HistogramBin {
            lower: lower + width * i as f64,
            upper: lower + width * (i + 1) as f64,
            count: *c,
        })
        .collect()
}

fn column(name: &str, data_type: &str, semantic_type: &str) -> ColumnProfile {
    ColumnProfile {
        name: name.into(),
        data_type: data_type.into(),
        semantic_type: semantic_type.into(),
        null_count: 0,
        null_percent: 0.0,
        distinct_count: 0,
        unique_percent: 0.0,
        min: None,
        max: None,
        mean: None,
        stddev: None,
        median: None,
        q25: None,
        q75: None,
        skewness: None,
        kurtosis: None,
        zeros: None,
        negatives: None,
        min_length: None,
        max_length: None,
        mean_length: None,
        outlier_count: None,
        invalid_count: 0,
        untrimmed_count: 0,
        top_values: Vec::new(),
        histogram: Vec::new(),
        pii: None,
    }
}

fn numeric(name: &str, seed: u64) -> ColumnProfile {
    let counts: Vec<u64> = (0..20u64).map(|i| 5 + ((i * 7 + seed * 13) % 17) * (1 + i % 5) * 10).collect();
    let top: Vec<ValueCount> = (0..10u64)
        .map(|i| ValueCount { value: Some(format!("{}.{}", 100 + seed * 3 + i, i)), count: 90 - i * 7 })
        .collect();
    ColumnProfile {
        null_count: seed % 40,
        null_percent: (seed % 40) as f64 / 125.0,
        distinct_count: 4_200 + seed,
        unique_percent: 84.0 + (seed % 10) as f64,
        min: Some("0.5".into()),
        max: Some(format!("{}.25", 1000 + seed)),
        mean: Some(420.5 + seed as f64),
        stddev: Some(120.25),
        median: Some(400.0),
        q25: Some(210.5),
        q75: Some(610.75),
        skewness: Some(0.42),
        kurtosis: Some(-0.3),
        zeros: Some(0),
        negatives: Some(0),
        outlier_count: Some(seed % 7),
        top_values: top,
        histogram: bins(0.5, 1000.25 + seed as f64, &counts),
        ..column(name, "DOUBLE", "float")
    }
}

fn agent(id: &str, metrics: serde_json::Value) -> AgentResult {
    AgentResult {
        agent_id: id.into(),
        status: "success".into(),
        execution_time_ms: 1234.5,
        summary_metrics: metrics,
        alerts: Vec::new(),
        issues: Vec::new(),
        recommendations: Vec::new(),
        row_level_issues: Vec::new(),
        row_level_issue_count: 0,
        parameters: json!({}),
    }
}

/// A report with every section filled: a profile of 13 columns of all kinds (including PII and
/// a hostile name) plus `extra_columns` numeric columns with 20-bin histograms and 10 top
/// values, the five agents, drift and risk.
pub fn rich_report(extra_columns: usize) -> Report {
    let date_start = 1_577_836_800.0; // 2020-01-01
    let date_end = 1_735_603_200.0; // 2024-12-31
    let mut columns = vec![
        ColumnProfile {
            distinct_count: 5_000,
            unique_percent: 100.0,
            min: Some("1".into()),
            max: Some("5000".into()),
            mean: Some(2500.5),
            stddev: Some(1443.52),
            median: Some(2500.5),
            q25: Some(1250.75),
            q75: Some(3750.25),
            zeros: Some(0),
            negatives: Some(0),
            outlier_count: Some(0),
            histogram: bins(1.0, 5000.0, &[250; 20]),
            ..column("customer_id", "BIGINT", "identifier")
        },
        ColumnProfile {
            null_count: 12,
            null_percent: 0.24,
            distinct_count: 3_876,
            unique_percent: 77.7,
            min: Some("-15.5".into()),
            max: Some("98765.43".into()),
            mean: Some(1234.567),
            stddev: Some(2345.678),
            median: Some(456.78),
            q25: Some(120.0),
            q75: Some(1500.0),
            skewness: Some(4.2),
            kurtosis: Some(21.5),
            zeros: Some(3),
            negatives: Some(7),
            outlier_count: Some(312),
            top_values: values(&[(Some("0"), 3), (Some("19.99"), 3), (Some("49.5"), 2), (None, 12)]),
            histogram: bins(
                -15.5,
                98765.43,
                &[2900, 1200, 500, 200, 90, 50, 30, 15, 6, 3, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1],
            ),
            ..column("amount", "DOUBLE", "currency")
        },
        ColumnProfile {
            distinct_count: 1_400,
            unique_percent: 28.0,
            min: Some("2020-01-01".into()),
            max: Some("2024-12-31".into()),
            histogram: bins(
                date_start,
                date_end,
                &[
                    40, 60, 80, 120, 150, 200, 260, 300, 320, 350, 380, 400, 330, 300, 280, 260, 240, 220,
                    200, 180,
                ],
            ),
            top_values: values(&[(Some("2024-01-02"), 14), (Some("2023-12-29"), 11)]),
            ..column("signup_date", "DATE", "date")
        },
        ColumnProfile {
            null_count: 1_250,
            null_percent: 25.0,
            distinct_count: 3_750,
            unique_percent: 100.0,
            min: Some("2024-01-01 00:03:00".into()),
            max: Some("2024-06-30 23:59:00".into()),
            histogram: bins(
                1_704_067_380.0,
                1_719_791_940.0,
                &[100, 150, 200, 250, 300, 350, 400, 450, 500, 550],
            ),
            ..column("last_login", "TIMESTAMP", "datetime")
        },
        ColumnProfile {
            distinct_count: 6,
            unique_percent: 0.12,
            min_length: Some(2),
            max_length: Some(14),
            mean_length: Some(7.4),
            untrimmed_count: 4,
            top_values: values(&[
                (Some("United Kingdom"), 2100),
                (Some("France"), 1200),
                (Some("Germany"), 900),
                (Some("Spain"), 500),
                (Some("Italy"), 296),
                (Some(" Italy "), 4),
            ]),
            ..column("country", "VARCHAR", "category")
        },
        ColumnProfile {
            null_count: 40,
            null_percent: 0.8,
            distinct_count: 4_950,
            unique_percent: 99.8,
            min: Some("aaron@example.org".into()),
            max: Some("zoe.smith@example.net".into()),
            min_length: Some(11),
            max_length: Some(38),
            mean_length: Some(21.3),
            invalid_count: 10,
            top_values: values(&[
                (Some("jane.doe@example.com"), 3),
                (Some("john@example.org"), 2),
                (None, 40),
            ]),
            pii: Some("email".into()),
            ..column("email", "VARCHAR", "email")
        },
        ColumnProfile {
            distinct_count: 4_990,
            unique_percent: 99.8,
            top_values: values(&[(Some("+44 20 7946 0958"), 2), (Some("+33 1 23 45 67 89"), 1)]),
            pii: Some("phone".into()),
            ..column("phone", "VARCHAR", "phone")
        },
        ColumnProfile {
            distinct_count: 5_000,
            unique_percent: 100.0,
            min: Some("000-12-3456".into()),
            max: Some("999-87-6543".into()),
            top_values: values(&[(Some("123-45-6789"), 1), (Some("987-65-4321"), 1)]),
            pii: Some("national_id".into()),
            ..column("ssn", "VARCHAR", "identifier")
        },
        ColumnProfile {
            distinct_count: 4_700,
            unique_percent: 94.0,
            top_values: values(&[(Some("Jane Doe"), 4), (Some("John Smith"), 3)]),
            pii: Some("name".into()),
            ..column("full_name", "VARCHAR", "text")
        },
        ColumnProfile {
            distinct_count: 4_800,
            unique_percent: 96.0,
            top_values: values(&[(Some("221B Baker Street"), 2)]),
            pii: Some("address".into()),
            ..column("home_address", "VARCHAR", "text")
        },
        ColumnProfile {
            distinct_count: 2,
            unique_percent: 0.04,
            top_values: values(&[(Some("true"), 3_100), (Some("false"), 1_900)]),
            ..column("active", "BOOLEAN", "boolean")
        },
        ColumnProfile {
            null_count: 4_990,
            null_percent: 99.8,
            distinct_count: 10,
            unique_percent: 100.0,
            min_length: Some(3),
            max_length: Some(2_000),
            mean_length: Some(180.2),
            top_values: values(&[(None, 4_990), (Some(&"long note ".repeat(40)), 1)]),
            ..column("notes", "VARCHAR", "text")
        },
        ColumnProfile {
            distinct_count: 3,
            unique_percent: 0.06,
            top_values: values(&[
                (Some("&\"'<>"), 2_000),
                (Some("<img src=x onerror=alert(1)>"), 1_500),
                (Some("a&b"), 1_500),
            ]),
            ..column(SCRIPT_COLUMN, "VARCHAR", "category")
        },
    ];
    for i in 0..extra_columns {
        columns.push(numeric(&format!("metric_{i:03}"), i as u64));
    }
    let alerts = vec![
        finding("HIGH_NULLS", "warning", Some("last_login"), "last_login is 25% null"),
        finding("HIGH_NULLS", "critical", Some("notes"), "notes is 99.8% null"),
        finding("OUTLIERS", "warning", Some("amount"), "amount has 312 outliers (6.2%)"),
        finding("SKEWED", "info", Some("amount"), "amount is right-skewed (4.2)"),
        finding("LIKELY_PII", "warning", Some("email"), "email likely holds email addresses"),
        finding("DUPLICATE_ROWS", "warning", None, "25 rows are exact duplicates"),
        finding("CONSTANT_COLUMN", "info", Some(SCRIPT_COLUMN), "<b>bold</b> & \"quoted\" 'message'"),
    ];
    let profile = Profile {
        row_count: 5_000,
        column_count: columns.len() as u64,
        duplicate_row_count: 25,
        quality: Quality {
            score: 82.4,
            grade: "B".into(),
            completeness: 91.3,
            validity: 99.6,
            uniqueness: 99.5,
            consistency: 99.9,
        },
        correlations: vec![
            Correlation {
                a: "customer_id".into(),
                b: "amount".into(),
                method: "pearson".into(),
                value: 0.03,
            },
            Correlation {
                a: "amount".into(),
                b: "metric_000".into(),
                method: "pearson".into(),
                value: -0.81,
            },
        ],
        columns,
        alerts: alerts.clone(),
    };

    let mut profiler = agent(
        "unified-profiler",
        json!({
            "rowCount": 5000, "columnCount": profile.column_count, "duplicateRowCount": 25,
            "rejectedRowCount": 2, "qualityScore": 82.4, "grade": "B", "completeness": 91.3,
            "validity": 99.6, "uniqueness": 99.5, "consistency": 99.9
        }),
    );
    profiler.alerts = alerts;
    profiler.issues = vec![
        finding("REJECTED_ROWS", "warning", None, "2 input rows could not be read as the detected schema"),
        finding("INVALID_VALUES", "warning", Some("email"), "10 values of email do not look like email"),
    ];
    profiler.recommendations = vec![
        finding(
            "IMPUTE_OR_DROP",
            "info",
            Some("notes"),
            "Impute the missing values of notes or drop the column",
        ),
        finding(
            "PROTECT_PII",
            "info",
            Some("email"),
            "email likely holds personal data; mask or restrict it",
        ),
    ];
    profiler.parameters = json!({"null_alert_threshold": 20.0, "top_n_values": 10, "histogram_bins": 20});

    let mut drift_agent = agent(
        "drift-detector",
        json!({"columnsCompared": 3, "driftedCount": 2, "rowCountChange": 500, "rowCountChangePercent": 11.1,
               "schemaChanges": {"added": 1, "removed": 1, "retyped": 1}}),
    );
    drift_agent.alerts = vec![
        finding("DRIFT", "warning", Some("amount"), "amount has drifted (KS D = 0.31, p < 0.001)"),
        finding("SCHEMA_CHANGE", "warning", None, "1 column added, 1 removed, 1 retyped"),
    ];
    drift_agent.execution_time_ms = 845.25;

    let mut risk_agent = agent(
        "score-risk",
        json!({"riskScore": 78.0, "riskLevel": "high", "piiColumnCount": 4, "regulationsApplying": ["GDPR", "CCPA"]}),
    );
    risk_agent.alerts = vec![finding("PII_FOUND", "critical", Some("ssn"), "ssn holds national identifiers")];
    risk_agent.recommendations =
        vec![finding("MASK_COLUMN", "info", Some("ssn"), "Mask or drop ssn before sharing the dataset")];

    let mut coverage = agent(
        "test-coverage-agent",
        json!({"rulesChecked": 12, "rulesPassed": 9, "coveragePercent": 75.0, "rowsChecked": 5000}),
    );
    coverage.issues =
        vec![finding("RULE_FAILED", "warning", Some("amount"), "amount must be ≥ 0 (7 rows fail)")];
    coverage.row_level_issues = (0..30)
        .map(|i| RowIssue {
            row: 10 + i * 37,
            column: Some("amount".into()),
            code: "NEGATIVE_AMOUNT".into(),
            message: format!("amount is negative (−{i}.5) <check>"),
        })
        .collect();
    coverage.row_level_issue_count = 1_234;

    let mut readiness = agent(
        "readiness-rater",
        json!({"readinessScore": 71.5, "readinessLevel": "needs work",
               "dimensions": {"completeness": 91.3, "validity": 99.6, "privacy": 22.0},
               "blockers": ["PII present", "High nulls in notes"]}),
    );
    readiness.status = "failed".into();
    readiness.issues =
        vec![finding("NOT_READY", "critical", None, "Dataset is not ready for production use")];

    let drift = DriftReport {
        baseline_row_count: 4_500,
        current_row_count: 5_000,
        row_count_change: 500,
        row_count_change_percent: Some(11.11),
        schema: SchemaDrift {
            added: vec![ColumnInfo { name: "loyalty_tier".into(), data_type: "VARCHAR".into() }],
            removed: vec![ColumnInfo { name: "fax".into(), data_type: "VARCHAR".into() }],
            retyped: vec![Retyped {
                name: "zip".into(),
                baseline_type: "BIGINT".into(),
                current_type: "VARCHAR".into(),
            }],
        },
        columns: vec![
            ColumnDrift {
                column: "amount".into(),
                kind: "numeric".into(),
                test: "ks".into(),
                baseline_count: 4_490,
                current_count: 4_988,
                statistic: Some(0.31),
                p_value: Some(1e-12),
                degrees_of_freedom: None,
                psi: Some(0.42),
                js_divergence: Some(0.12),
                verdict: "drift".into(),
                bins: (0..10)
                    .map(|i| DriftBin {
                        label: format!("[{}, {})", i * 100, (i + 1) * 100),
                        baseline: [0.3, 0.2, 0.15, 0.1, 0.08, 0.06, 0.05, 0.03, 0.02, 0.01][i],
                        current: [0.1, 0.12, 0.14, 0.15, 0.14, 0.12, 0.09, 0.07, 0.05, 0.02][i],
                    })
                    .collect(),
            },
            ColumnDrift {
                column: "country".into(),
                kind: "categorical".into(),
                test: "chi_square".into(),
                baseline_count: 4_500,
                current_count: 5_000,
                statistic: Some(3.2),
                p_value: Some(0.52),
                degrees_of_freedom: Some(4),
                psi: Some(0.01),
                js_divergence: Some(0.002),
                verdict: "no_drift".into(),
                bins: vec![
                    DriftBin { label: "United Kingdom".into(), baseline: 0.4, current: 0.42 },
                    DriftBin { label: "France".into(), baseline: 0.25, current: 0.24 },
                    DriftBin { label: "(other)".into(), baseline: 0.35, current: 0.34 },
                ],
            },
            ColumnDrift {
                column: "email".into(),
                kind: "categorical".into(),
                test: "chi_square".into(),
                baseline_count: 4_460,
                current_count: 4_960,
                statistic: Some(88.0),
                p_value: Some(0.0004),
                degrees_of_freedom: Some(2),
                psi: Some(0.25),
                js_divergence: Some(0.05),
                verdict: "drift".into(),
                bins: vec![
                    DriftBin { label: "jane.doe@example.com".into(), baseline: 0.01, current: 0.02 },
                    DriftBin { label: "(other)".into(), baseline: 0.99, current: 0.98 },
                ],
            },
            ColumnDrift {
                column: "notes".into(),
                kind: "categorical".into(),
                test: "chi_square".into(),
                baseline_count: 8,
                current_count: 10,
                statistic: None,
                p_value: None,
                degrees_of_freedom: None,
                psi: None,
                js_divergence: None,
                verdict: "insufficient_data".into(),
                bins: Vec::new(),
            },
        ],
        drifted_count: 2,
        baseline_name: Some("customers-2024-q1.csv".into()),
        personal_columns: Vec::new(),
    };

    let risk = RiskReport {
        risk_score: 78.0,
        risk_level: "high".into(),
        columns: vec![
            PiiColumn {
                column: "ssn".into(),
                kind: "ssn".into(),
                match_count: 5_000,
                non_null_count: 5_000,
                share: 1.0,
                header_evidence: true,
                sensitivity: "high".into(),
                examples: vec!["***-**-6789".into(), "***-**-4321".into()],
            },
            PiiColumn {
                column: "email".into(),
                kind: "email".into(),
                match_count: 4_950,
                non_null_count: 4_960,
                share: 0.998,
                header_evidence: true,
                sensitivity: "medium".into(),
                examples: vec!["j***@e***.com".into(), "j***@e***.org".into()],
            },
            PiiColumn {
                column: "phone".into(),
                kind: "phone".into(),
                match_count: 4_100,
                non_null_count: 5_000,
                share: 0.82,
                header_evidence: true,
                sensitivity: "medium".into(),
                examples: vec!["+** ** **** **58".into()],
            },
            PiiColumn {
                column: "full_name".into(),
                kind: "person_name".into(),
                match_count: 4_000,
                non_null_count: 5_000,
                share: 0.8,
                header_evidence: true,
                sensitivity: "medium".into(),
                examples: vec!["J*** D**".into()],
            },
        ],
        regulations: vec![
            Regulation {
                name: "GDPR".into(),
                applies: true,
                reasons: vec!["Direct identifiers of people (email, name)".into()],
                columns: vec!["email".into(), "full_name".into(), "phone".into()],
            },
            Regulation {
                name: "CCPA".into(),
                applies: true,
                reasons: vec!["Identifiers of consumers (SSN, email)".into()],
                columns: vec!["ssn".into(), "email".into()],
            },
            Regulation {
                name: "HIPAA".into(),
                applies: false,
                reasons: vec!["Would apply with health data linked to identifiers".into()],
                columns: Vec::new(),
            },
        ],
    };

    Report {
        profile: Some(profile),
        agents: vec![profiler, drift_agent, risk_agent, coverage, readiness],
        drift: Some(drift),
        risk: Some(risk),
        cleanse: None,
    }
}

/// The job's metadata for [`rich_report`].
pub fn rich_meta() -> ReportMeta {
    ReportMeta {
        job_id: "0190a6b2-7c3e-7d41-9a55-3f1e2d4c5b6a".into(),
        tool_id: "profile-my-data".into(),
        dataset_name: "customers.csv".into(),
        baseline_name: Some("customers-2024-q1.csv".into()),
        created_at: chrono::DateTime::from_timestamp(1_717_243_200, 0).unwrap_or_default(),
        finished_at: chrono::DateTime::from_timestamp(1_717_243_263, 0),
        personal: Default::default(),
    }
}
