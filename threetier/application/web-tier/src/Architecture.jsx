const TIERS = [
  { name: 'Presentation', detail: 'External ALB → nginx on EC2 (Auto Scaling, 2 AZs) serving this React page' },
  { name: 'Application', detail: 'Internal ALB → Node.js on port 4000 (Auto Scaling, 2 AZs)' },
  { name: 'Data', detail: 'Aurora MySQL: writer and a reader replica in the other AZ' },
];

export default function Architecture() {
  return (
    <section>
      <h1>AWS three-tier web architecture</h1>
      <p>
        Each tier runs in its own subnets across two Availability Zones and only accepts traffic from the tier in
        front of it.
      </p>
      <ol className="tiers" aria-label="architecture">
        {TIERS.map((tier) => (
          <li key={tier.name} className="tier">
            <strong>{tier.name} tier</strong>
            <span>{tier.detail}</span>
          </li>
        ))}
      </ol>
      <p>
        Open <a href="#/db">DB Demo</a> to read and write the database through all three tiers.
      </p>
    </section>
  );
}
