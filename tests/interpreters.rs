//! Real interpreters under `mtcp launch`: python3 and perl counting loops are
//! checkpointed, killed and restarted, and keep counting.

pub mod common;

use common::*;
use std::path::PathBuf;
use std::time::Duration;

const PYTHON_LOOP: &str = "\
import sys, time
data = [i * i for i in range(100000)]
i = 0
while True:
    i += 1
    if sum(data[:1000]) != 332833500:
        print('BAD data', i, flush=True)
        sys.exit(3)
    print('count %d' % i, flush=True)
    time.sleep(0.05)
";

const PERL_LOOP: &str = r#"
$| = 1;
my @data = map { $_ * $_ } 0 .. 99999;
my $i = 0;
while (1) {
    $i++;
    my $s = 0; $s += $_ for @data[0 .. 999];
    if ($s != 332833500) { print "BAD data $i\n"; exit 3; }
    print "count $i\n";
    select(undef, undef, undef, 0.05);
}
"#;

#[test]
fn python3_loop() {
    let t = Test::new("python3");
    let py = python3();
    let mut p = t.launch(&py, &["-c", PYTHON_LOOP]);
    p.wait_for_count(5, Duration::from_secs(30));
    let c = cycle(&t, p);
    assert!(
        c.image
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("ckpt_python"),
        "{}",
        c.image.display()
    );
    // And once more from the restarted interpreter.
    let c2 = cycle(&t, c.restarted);
    assert_eq!(c2.image, c.image);
}

#[test]
fn perl_loop() {
    let t = Test::new("perl");
    let mut p = t.launch(&PathBuf::from("/usr/bin/perl"), &["-e", PERL_LOOP]);
    p.wait_for_count(5, Duration::from_secs(30));
    let c = cycle(&t, p);
    assert!(
        c.image.file_name().unwrap().to_str().unwrap().starts_with("ckpt_perl"),
        "{}",
        c.image.display()
    );
    let c2 = cycle(&t, c.restarted);
    assert_eq!(c2.image, c.image);
}
