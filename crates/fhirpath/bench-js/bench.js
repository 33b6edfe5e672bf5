// Times fhirpath.js (compiled expressions, R4 model) on the expressions of benches/eval.rs.
// Usage: npm install && node bench.js   (TSUNAGU_SHARED defaults to ../../../../shared)
const fs = require("fs");
const path = require("path");
const fhirpath = require("fhirpath");
const r4 = require("fhirpath/fhir-context/r4");

const shared = process.env.TSUNAGU_SHARED || path.join(__dirname, "../../../../shared");
const dir = path.join(shared, "conformance/fhirpath/input-json");
const load = (n) => JSON.parse(fs.readFileSync(path.join(dir, `${n}-example.json`), "utf8"));
const inputs = { patient: load("patient"), observation: load("observation") };

const EXPRESSIONS = [
  ["patient", "Patient.name"],
  ["patient", "Patient.birthDate"],
  ["patient", "Patient.identifier"],
  ["patient", "Patient.telecom.where(system='phone')"],
  ["patient", "Patient.name.given.first()"],
  ["patient", "Patient.name.where(use='official').family"],
  ["patient", "Patient.address.city | Patient.address.state"],
  ["patient", "Patient.birthDate < @2000-01-01"],
  ["patient", "Patient.birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value"],
  ["observation", "Observation.value.as(Quantity)"],
  ["observation", "Observation.value.as(Quantity) > 100 '[lb_av]'"],
  ["observation", "Observation.code.coding.where(system='http://loinc.org').code"],
];

const budgetMs = Number(process.env.BENCH_MS || 700);
let total = 0;
console.log("expression".padEnd(100), "evals/s".padStart(14), "ns/eval".padStart(10));
for (const [input, src] of EXPRESSIONS) {
  const res = inputs[input];
  const fn = fhirpath.compile(src, r4);
  for (let i = 0; i < 1000; i++) fn(res);
  // Best of several rounds, as in benches/eval.rs.
  let rate = 0;
  for (let round = 0; round < 5; round++) {
    const start = process.hrtime.bigint();
    let n = 0;
    while (Number(process.hrtime.bigint() - start) / 1e6 < budgetMs / 5) {
      for (let i = 0; i < 100; i++) fn(res);
      n += 100;
    }
    rate = Math.max(rate, n / (Number(process.hrtime.bigint() - start) / 1e9));
  }
  total += rate;
  console.log(src.padEnd(100), rate.toFixed(0).padStart(14), (1e9 / rate).toFixed(0).padStart(10));
}
console.log(`mean evals/s: ${(total / EXPRESSIONS.length).toFixed(0)}`);
