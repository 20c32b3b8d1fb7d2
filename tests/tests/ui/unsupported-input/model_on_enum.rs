use kd_core::model;

#[model]
enum Teacher {
    Big,
}

fn main() {}
