import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HaDiscovery } from '../../nodes/lib/home-assistant';
import { render, sampleReadings } from '../support/home-assistant';

/**
 * Our value templates are written in a small subset of Jinja, so that Home Assistant (Jinja) and the test's
 * renderer (nunjucks) agree on them. Every template we announce matches one of these forms, and on each form
 * nunjucks gives what Jinja gives (the expected strings are Jinja's, by its documented semantics).
 */
const LABEL = String.raw`value_json\['values'\]\['[A-Z0-9+-]+'\]`;
const FORMS: [string, RegExp][] = [
  [
    'a value or None',
    new RegExp(String.raw`^\{\{ ${LABEL}( \* (1000|0\.01))? if ${LABEL} is defined else 'None' \}\}$`),
  ],
  [
    'trimmed text or None',
    new RegExp(String.raw`^\{\{ \(${LABEL} \| trim\) if ${LABEL} is defined else 'None' \}\}$`),
  ],
  ['a value or 0', new RegExp(String.raw`^\{\{ ${LABEL} if ${LABEL} is defined else 0 \}\}$`)],
  ['a field or None', /^\{\{ value_json\['tariffPeriod'\] if value_json\['tariffPeriod'\] else 'None' \}\}$/],
  ['the reading time', /^\{\{ value_json\['time'\] \}\}$/],
  ['a boolean as ON/OFF', /^\{\{ 'ON' if value_json\['overrun'\] else 'OFF' \}\}$/],
  ['a state compared', /^\{\{ 'ON' if value_json\['state'\] == 'raised' else 'OFF' \}\}$/],
  [
    'a nested field or INCONNU',
    /^\{\{ value_json\['tempo'\]\['(today|tomorrow)'\] if value_json\['tempo'\] is defined and value_json\['tempo'\]\['(today|tomorrow)'\] else 'INCONNU' \}\}$/,
  ],
];

describe('value templates: a Jinja subset nunjucks renders the same', () => {
  test('every template announced for the sample meters is one of the forms', () => {
    const discovery = new HaDiscovery({
      prefix: 'homeassistant',
      availabilityTopic: '',
      deviceName: '{meter}',
    });
    const templates = new Set<string>();
    for (const r of sampleReadings())
      for (const m of discovery.observe(r, `teleinfo/p/${r.meter}/reading`, 0))
        templates.add((JSON.parse(m.payload) as { value_template: string }).value_template);
    templates.add(
      (
        JSON.parse(discovery.observeAlert('021861348497', 'overrun', 't')[0].payload) as {
          value_template: string;
        }
      ).value_template,
    );
    for (const t of templates)
      assert.ok(
        FORMS.some(([, form]) => form.test(t)),
        `not a known form: ${t}`,
      );
    assert.ok(templates.size > 20);
  });

  test('on each form, nunjucks gives what Jinja gives', () => {
    const cases: [string, unknown, string][] = [
      [
        "{{ value_json['values']['PAPP'] if value_json['values']['PAPP'] is defined else 'None' }}",
        { values: { PAPP: 2840 } },
        '2840',
      ],
      [
        "{{ value_json['values']['PAPP'] if value_json['values']['PAPP'] is defined else 'None' }}",
        { values: {} },
        'None',
      ],
      [
        "{{ value_json['values']['PREF'] * 1000 if value_json['values']['PREF'] is defined else 'None' }}",
        { values: { PREF: 9 } },
        '9000',
      ],
      [
        "{{ value_json['values']['GAZ'] * 0.01 if value_json['values']['GAZ'] is defined else 'None' }}",
        { values: { GAZ: 1250 } },
        '12.5',
      ],
      [
        "{{ (value_json['values']['NGTF'] | trim) if value_json['values']['NGTF'] is defined else 'None' }}",
        { values: { NGTF: '     TEMPO      ' } },
        'TEMPO',
      ],
      [
        "{{ (value_json['values']['NGTF'] | trim) if value_json['values']['NGTF'] is defined else 'None' }}",
        { values: {} },
        'None',
      ],
      [
        "{{ value_json['values']['ADPS'] if value_json['values']['ADPS'] is defined else 0 }}",
        { values: {} },
        '0',
      ],
      [
        "{{ value_json['values']['ADPS'] if value_json['values']['ADPS'] is defined else 0 }}",
        { values: { ADPS: 32 } },
        '32',
      ],
      [
        "{{ value_json['tariffPeriod'] if value_json['tariffPeriod'] else 'None' }}",
        { tariffPeriod: null },
        'None',
      ],
      [
        "{{ value_json['tariffPeriod'] if value_json['tariffPeriod'] else 'None' }}",
        { tariffPeriod: 'HPJB' },
        'HPJB',
      ],
      ["{{ value_json['time'] }}", { time: '2026-01-15T10:00:00.000Z' }, '2026-01-15T10:00:00.000Z'],
      ["{{ 'ON' if value_json['overrun'] else 'OFF' }}", { overrun: true }, 'ON'],
      ["{{ 'ON' if value_json['overrun'] else 'OFF' }}", { overrun: false }, 'OFF'],
      ["{{ 'ON' if value_json['state'] == 'raised' else 'OFF' }}", { state: 'cleared' }, 'OFF'],
      [
        "{{ value_json['tempo']['today'] if value_json['tempo'] is defined and value_json['tempo']['today'] else 'INCONNU' }}",
        { tempo: { today: null, tomorrow: null } },
        'INCONNU',
      ],
      [
        "{{ value_json['tempo']['today'] if value_json['tempo'] is defined and value_json['tempo']['today'] else 'INCONNU' }}",
        {},
        'INCONNU',
      ],
      [
        "{{ value_json['tempo']['tomorrow'] if value_json['tempo'] is defined and value_json['tempo']['tomorrow'] else 'INCONNU' }}",
        { tempo: { today: 'BLEU', tomorrow: 'ROUGE' } },
        'ROUGE',
      ],
    ];
    for (const [template, json, jinja] of cases) assert.equal(render(template, json), jinja, template);
  });
});
